package catalog

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// Errors of Store.Metric, for the HTTP layer: 400 and 404.
var (
	ErrInvalidMetricPath = errors.New("invalid metric path")
	ErrMetricNotFound    = errors.New("metric not found")
)

// Store serves the catalog to the portal: profiles, the grouped table list and the metrics,
// always filtered by what the caller may see. It reads the files the pipeline writes and
// rereads a file when it changes, so the pipeline may run in another process.
type Store struct {
	cfg    *config.Config
	files  Files
	logger *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedFile
}

type cachedFile struct {
	mod  time.Time
	size int64
	f    *ProfilesFile
}

// NewStore serves the catalog of an instance.
func NewStore(cfg *config.Config, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.Default()
	}
	return &Store{cfg: cfg, files: FilesFor(cfg.Paths), logger: logger, now: time.Now, cache: map[string]cachedFile{}}
}

func (s *Store) read(path string) (*ProfilesFile, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return ReadProfiles(path) // missing: empty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[path]; ok && c.mod.Equal(fi.ModTime()) && c.size == fi.Size() {
		return c.f, nil
	}
	f, err := ReadProfiles(path)
	if err != nil {
		return nil, err
	}
	s.cache[path] = cachedFile{mod: fi.ModTime(), size: fi.Size(), f: f}
	return f, nil
}

// Profile returns a table's profile (by name or id) if canSee allows the table; relations
// and metrics involving tables the caller may not see are left out, and the freshness age is
// computed now. false means no such table, not visible, or not profiled yet (the same answer,
// so that a private table's existence is not revealed).
func (s *Store) Profile(table string, canSee func(config.Table) bool) (*TableProfile, bool) {
	t, ok := s.cfg.Catalogue.Table(table)
	if !ok || !canSee(t) {
		return nil, false
	}
	path := s.files.Public
	if s.cfg.IsPrivate(t) {
		path = s.files.Private
	}
	f, err := s.read(path)
	if err != nil {
		s.logger.Error("cannot read profiles", "file", path, "error", err)
		return nil, false
	}
	p, ok := f.Tables[t.Name]
	if !ok || p == nil {
		return nil, false
	}
	c := redact(p, s.cfg, canSee)
	if c.Freshness != nil {
		fr := *c.Freshness
		if fr.LastSync != nil {
			age := F(s.now().Sub(*fr.LastSync).Hours())
			fr.AgeHours = &age
		}
		c.Freshness = &fr
	}
	return c, true
}

// CatalogView is the portal's catalogue: the visible tables grouped into categories.
type CatalogView struct {
	LastUpdated *time.Time      `json:"last_updated"`
	TableCount  int             `json:"table_count"`
	TotalRows   int64           `json:"total_rows"`
	Categories  []CategoryView  `json:"categories"`
	Metrics     []MetricSummary `json:"metrics"`
}

// CategoryView is one folder (or "other") of the catalogue.
type CategoryView struct {
	Folder string       `json:"folder"`
	Label  string       `json:"label"`
	Icon   string       `json:"icon"`
	Tables []TableEntry `json:"tables"`
}

// TableEntry is a table in the catalogue list.
type TableEntry struct {
	Name            string     `json:"name"`
	ID              string     `json:"id"`
	Description     string     `json:"description"`
	Folder          string     `json:"folder"`
	Dataset         string     `json:"dataset,omitempty"`
	Private         bool       `json:"private"`
	SyncStrategy    string     `json:"sync_strategy"`
	Rows            int64      `json:"rows"`
	Columns         int        `json:"columns"`
	FileSizeMB      Float      `json:"file_size_mb"`
	LastSync        *time.Time `json:"last_sync"`
	Profiled        bool       `json:"profiled"`
	Stale           bool       `json:"stale"`
	AvgCompleteness *Float     `json:"avg_completeness,omitempty"`
	Alerts          int        `json:"alerts"`
}

// OtherFolder collects the tables of folders that catalog.categories and catalog.order do not list.
const OtherFolder = "other"

// Catalog groups the tables canSee allows by catalog.order, then the other configured
// categories, then "Other" for every folder not configured (tables never vanish from the list,
// as they did in the original). Categories without a visible table are left out.
func (s *Store) Catalog(canSee func(config.Table) bool) CatalogView {
	v := CatalogView{Categories: []CategoryView{}, Metrics: []MetricSummary{}}
	state, err := store.LoadSyncState(filepath.Join(s.cfg.Paths.Metadata, "sync_state.json"))
	if err != nil {
		s.logger.Error("cannot read sync state", "error", err)
		state = &store.SyncState{}
	}
	if !state.LastUpdated.IsZero() {
		lu := state.LastUpdated
		v.LastUpdated = &lu
	}
	cats := s.cfg.Instance.Catalog
	order := slices.Clone(cats.Order)
	var rest []string
	for f := range cats.Categories {
		if !slices.Contains(order, f) {
			rest = append(rest, f)
		}
	}
	sort.Strings(rest)
	order = append(order, rest...)
	byFolder := map[string][]TableEntry{}
	for _, t := range s.cfg.Catalogue.Tables {
		if !canSee(t) {
			continue
		}
		e := s.entry(t, state)
		folder := t.Folder
		if !slices.Contains(order, folder) {
			folder = OtherFolder
		}
		byFolder[folder] = append(byFolder[folder], e)
		v.TableCount++
		v.TotalRows += e.Rows
	}
	if !slices.Contains(order, OtherFolder) {
		order = append(order, OtherFolder)
	}
	for _, f := range order {
		tables := byFolder[f]
		if len(tables) == 0 {
			continue
		}
		c := CategoryView{Folder: f, Label: f, Tables: tables}
		if cc, ok := cats.Categories[f]; ok {
			c.Label, c.Icon = cc.Label, cc.Icon
		}
		if c.Label == "" || (f == OtherFolder && c.Label == OtherFolder) {
			c.Label = f
			if f == OtherFolder {
				c.Label = "Other"
			}
		}
		v.Categories = append(v.Categories, c)
	}
	v.Metrics, _ = s.Metrics(canSee)
	return v
}

func (s *Store) entry(t config.Table, state *store.SyncState) TableEntry {
	e := TableEntry{Name: t.Name, ID: t.ID, Description: t.Description, Folder: t.Folder, Dataset: t.Dataset,
		Private: s.cfg.IsPrivate(t), SyncStrategy: t.SyncStrategy}
	if st, ok := state.Tables[t.ID]; ok {
		e.Rows, e.Columns, e.FileSizeMB = st.Rows, st.Columns, F(st.FileSizeMB)
		if !st.LastSync.IsZero() {
			ls := st.LastSync
			e.LastSync = &ls
		}
	}
	path := s.files.Public
	if e.Private {
		path = s.files.Private
	}
	if f, err := s.read(path); err == nil {
		if p, ok := f.Tables[t.Name]; ok && p != nil {
			ac := p.AvgCompleteness
			e.Profiled, e.Stale, e.AvgCompleteness, e.Alerts = true, p.Stale, &ac, len(p.Alerts)
		}
	}
	return e
}

// metrics loads the metric files; files with problems are logged and left out.
func (s *Store) metrics() []*MetricDef {
	ms, err := LoadMetrics(filepath.Join(s.cfg.Paths.DocsDir, "metrics"), func(name string) bool {
		_, ok := s.cfg.Catalogue.Table(name)
		return ok
	})
	if err != nil {
		s.logger.Warn("metric definitions with problems are left out", "error", err)
	}
	return ms
}

// visibleMetric says whether the caller may see every table a metric uses.
func (s *Store) visibleMetric(m *MetricDef, canSee func(config.Table) bool) bool {
	for _, name := range m.AllTables() {
		if t, ok := s.cfg.Catalogue.Table(name); !ok || !canSee(t) {
			return false
		}
	}
	return true
}

// Metrics lists the metrics whose tables the caller may all see, by file.
func (s *Store) Metrics(canSee func(config.Table) bool) ([]MetricSummary, error) {
	out := []MetricSummary{}
	for _, m := range s.metrics() {
		if s.visibleMetric(m, canSee) {
			out = append(out, m.Summary())
		}
	}
	return out, nil
}

// Metric returns docs/metrics/<category>/<name>.yml (name with or without .yml) as the
// portal's metric view: the first metric of the file. category and name must be plain
// lower-case names (ErrInvalidMetricPath otherwise); they are looked up among the loaded
// files, never joined into a path. A metric using a table the caller may not see is
// ErrMetricNotFound, like a missing one.
func (s *Store) Metric(category, name string, canSee func(config.Table) bool) (*MetricView, error) {
	stem := strings.TrimSuffix(strings.TrimSuffix(name, ".yml"), ".yaml")
	if !segment.MatchString(category) || !segment.MatchString(stem) {
		return nil, ErrInvalidMetricPath
	}
	for _, m := range s.metrics() {
		dir, file, _ := strings.Cut(m.File, "/")
		if dir != category || (file != stem+".yml" && file != stem+".yaml") {
			continue
		}
		if !s.visibleMetric(m, canSee) {
			return nil, ErrMetricNotFound
		}
		v := m.View()
		v.Technical.DataSources = slices.DeleteFunc(v.Technical.DataSources, func(d DataSource) bool {
			t, ok := s.cfg.Catalogue.Table(d.Table)
			return ok && !canSee(t)
		})
		return v, nil
	}
	return nil, ErrMetricNotFound
}
