package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// ProfilesFile is data/metadata/profiles.json (and its private twin): the profiles by table name.
type ProfilesFile struct {
	GeneratedAt time.Time                `json:"generated_at"`
	Version     string                   `json:"version"`
	Tables      map[string]*TableProfile `json:"tables"`
}

const profilesVersion = "1.0"

// Files are the two profiles files. Public holds only tables every analyst may see; Private
// holds the private tables, for privileged analysts. A table is never in both.
type Files struct {
	Public  string
	Private string
}

// FilesFor lays out the profiles files of an instance.
func FilesFor(p config.Paths) Files {
	return Files{
		Public:  filepath.Join(p.Metadata, "profiles.json"),
		Private: filepath.Join(p.Metadata, "private", "profiles.json"),
	}
}

// ReadProfiles reads a profiles file; a missing file has no profiles.
func ReadProfiles(path string) (*ProfilesFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &ProfilesFile{Version: profilesVersion, Tables: map[string]*TableProfile{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var f ProfilesFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: corrupt profiles file: %w", path, err)
	}
	if f.Tables == nil {
		f.Tables = map[string]*TableProfile{}
	}
	return &f, nil
}

func writeProfiles(path string, f *ProfilesFile, perm os.FileMode, now time.Time) error {
	f.GeneratedAt, f.Version = now.UTC(), profilesVersion
	return store.WriteFileAtomic(path, perm, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	})
}

// Put records a table's profile in the file its access calls for and removes it from the
// other one (a table that became private leaves the public file). Profiles in the public file
// never name private tables: relations and metrics that involve one are left out there. The
// caller serializes Put and MarkStale calls.
func (fs Files) Put(cfg *config.Config, t config.Table, p *TableProfile, now time.Time) error {
	private := cfg.IsPrivate(t)
	pub, err := ReadProfiles(fs.Public)
	if err != nil {
		return err
	}
	priv, err := ReadProfiles(fs.Private)
	if err != nil {
		return err
	}
	if private {
		priv.Tables[t.Name] = p
		delete(pub.Tables, t.Name)
	} else {
		pub.Tables[t.Name] = redact(p, cfg, func(u config.Table) bool { return !cfg.IsPrivate(u) })
		delete(priv.Tables, t.Name)
	}
	// Access may have changed since other tables were profiled: move nothing private into
	// the public file.
	for name := range pub.Tables {
		if u, ok := cfg.Catalogue.Table(name); ok && cfg.IsPrivate(u) {
			delete(pub.Tables, name)
		}
	}
	if err := writeProfiles(fs.Public, pub, 0o644, now); err != nil {
		return err
	}
	return writeProfiles(fs.Private, priv, 0o600, now)
}

// MarkStale flags a table's previous profile as stale after a failed profiling, with the
// reason. It reports whether there was a previous profile.
func (fs Files) MarkStale(cfg *config.Config, t config.Table, reason error, now time.Time) (bool, error) {
	path := fs.Public
	perm := os.FileMode(0o644)
	if cfg.IsPrivate(t) {
		path, perm = fs.Private, 0o600
	}
	f, err := ReadProfiles(path)
	if err != nil {
		return false, err
	}
	p, ok := f.Tables[t.Name]
	if !ok {
		return false, nil
	}
	p.Stale, p.StaleError = true, reason.Error()
	return true, writeProfiles(path, f, perm, now)
}

// redact returns a copy of p without the relations and metrics that involve a table visible
// says no to.
func redact(p *TableProfile, cfg *config.Config, visible func(config.Table) bool) *TableProfile {
	ok := func(name string) bool {
		t, found := cfg.Catalogue.Table(name)
		return !found || visible(t) // unknown names are not catalogue tables, nothing to hide
	}
	c := *p
	c.RelatedTables = slices.DeleteFunc(slices.Clone(p.RelatedTables), func(r Relation) bool { return !ok(r.Table) })
	if c.RelatedTables == nil {
		c.RelatedTables = []Relation{}
	}
	c.UsedByMetrics = slices.DeleteFunc(slices.Clone(p.UsedByMetrics), func(m MetricRef) bool {
		for _, t := range m.Tables {
			if !ok(t) {
				return true
			}
		}
		return false
	})
	if c.UsedByMetrics == nil {
		c.UsedByMetrics = []MetricRef{}
	}
	return &c
}

// Enrich adds to a profile what the catalogue, the sync state and the metrics know about the
// table: description, key, strategy, last sync and freshness, relations, and the metrics
// that use it.
func Enrich(p *TableProfile, cat config.Catalogue, t config.Table, state *store.TableState, metrics []*MetricDef) {
	p.TableID, p.Name, p.Description = t.ID, t.Name, t.Description
	p.PrimaryKey = strings.Join(t.PrimaryKey, ", ")
	p.SyncStrategy = t.SyncStrategy
	if state != nil {
		if state.Strategy != "" {
			p.SyncStrategy = state.Strategy
		}
		if !state.LastSync.IsZero() {
			ls := state.LastSync.UTC()
			p.LastSync = &ls
		}
	}
	p.Freshness = &Freshness{LastSync: p.LastSync, Schedule: t.Schedule}
	if p.DateRange != nil {
		p.Freshness.LatestData = p.DateRange.Latest
	}
	p.RelatedTables = Relations(cat, t)
	p.UsedByMetrics = []MetricRef{}
	for _, m := range metrics {
		for _, name := range m.AllTables() {
			if u, ok := cat.Table(name); ok && u.Name == t.Name {
				p.UsedByMetrics = append(p.UsedByMetrics, MetricRef{Name: m.Name, File: m.File, Tables: m.AllTables()})
				break
			}
		}
	}
	slices.SortFunc(p.UsedByMetrics, func(a, b MetricRef) int { return strings.Compare(a.Name+"\x00"+a.File, b.Name+"\x00"+b.File) })
	p.UsedByMetrics = slices.CompactFunc(p.UsedByMetrics, func(a, b MetricRef) bool { return a.Name == b.Name && a.File == b.File })
}

// Relations lists a table's foreign keys (belongs_to) and the keys of other tables that point
// at it (has_many). A key references "<table>.<column>".
func Relations(cat config.Catalogue, t config.Table) []Relation {
	out := []Relation{}
	for _, fk := range t.ForeignKeys {
		ref, col := splitRef(fk.References)
		if u, ok := cat.Table(ref); ok {
			ref = u.Name
		}
		d := fk.Description
		if d == "" {
			d = fmt.Sprintf("Each %s row belongs to one %s row (%s = %s.%s)", t.Name, ref, fk.Column, ref, col)
		}
		out = append(out, Relation{Table: ref, JoinColumn: fk.Column, ForeignColumn: col, Direction: "belongs_to", Description: d})
	}
	for _, o := range cat.Tables {
		for _, fk := range o.ForeignKeys {
			ref, col := splitRef(fk.References)
			if ref != t.Name && ref != t.ID {
				continue
			}
			d := fk.Description
			if d == "" {
				d = fmt.Sprintf("A %s row has many %s rows (%s.%s = %s)", t.Name, o.Name, o.Name, fk.Column, col)
			}
			out = append(out, Relation{Table: o.Name, JoinColumn: col, ForeignColumn: fk.Column, Direction: "has_many", Description: d})
		}
	}
	return out
}

func splitRef(ref string) (table, column string) {
	i := strings.LastIndex(ref, ".")
	if i < 0 {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}
