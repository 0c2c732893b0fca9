package portal

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

func (s *server) catalogRoutes(r *mux.Router) {
	r.Handle("/catalog", s.page(s.catalogPage)).Methods(http.MethodGet)
	r.Handle("/catalog/datasets", s.page(s.switchDataset)).Methods(http.MethodPost)
	r.Handle("/catalog/{table}", s.page(s.tablePage)).Methods(http.MethodGet)
}

type categoryView struct {
	Key, Label, Icon string
	Tables           []tableRow
}

type datasetView struct {
	Name, Label, Description, SizeHint string
	Requires, Tables                   []string
	On, Blocked                        bool
}

type catalogView struct {
	Query      string
	Categories []categoryView
	Datasets   []datasetView
	Count      int
}

func (s *server) catalogPage(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	s.renderCached(w, r, "catalog", "Catalog", s.visibilityKey(user)+"\x00"+q, func() (any, error) {
		return s.catalogView(user, q)
	})
}

func (s *server) catalogView(user *store.User, q string) (*catalogView, error) {
	rows, err := s.tableRows(user)
	if err != nil {
		return nil, err
	}
	v := &catalogView{Query: q}
	byFolder := map[string][]tableRow{}
	for _, t := range rows {
		if t.Dataset != "" && !user.Datasets[t.Dataset] {
			continue // shown under its dataset until switched on
		}
		if q != "" && !containsFold(t.Name+" "+t.Description+" "+t.Folder, q) {
			continue
		}
		byFolder[t.Folder] = append(byFolder[t.Folder], t)
		v.Count++
	}
	cats := s.Config.Instance.Catalog
	order := append([]string(nil), cats.Order...)
	if len(order) == 0 {
		for k := range cats.Categories {
			order = append(order, k)
		}
		sort.Strings(order)
	}
	// Folders missing from the order are shown after it, not dropped.
	listed := map[string]bool{}
	for _, k := range order {
		listed[k] = true
	}
	var rest []string
	for k := range byFolder {
		if !listed[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range append(order, rest...) {
		if len(byFolder[k]) == 0 {
			continue
		}
		c := categoryView{Key: k, Label: k, Tables: byFolder[k]}
		if cat, ok := cats.Categories[k]; ok {
			c.Label, c.Icon = cmp.Or(cat.Label, k), cat.Icon
		}
		v.Categories = append(v.Categories, c)
	}
	v.Datasets = s.datasets(user, rows)
	return v, nil
}

// datasets lists the optional datasets with the user's switches.
func (s *server) datasets(user *store.User, rows []tableRow) []datasetView {
	var out []datasetView
	for name, d := range s.Config.Instance.Datasets {
		dv := datasetView{Name: name, Label: cmp.Or(d.Label, name), Description: d.Description, SizeHint: d.SizeHint,
			Requires: d.Requires, On: user.Datasets[name]}
		for _, req := range d.Requires {
			if !user.Datasets[req] {
				dv.Blocked = true
			}
		}
		for _, t := range rows {
			if t.Dataset == name {
				dv.Tables = append(dv.Tables, t.Name)
			}
		}
		out = append(out, dv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// switchDataset turns an optional dataset on or off for the signed-in user, honouring
// `requires` both ways.
func (s *server) switchDataset(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	name, on := r.PostFormValue("dataset"), r.PostFormValue("on") == "1"
	ds := s.Config.Instance.Datasets
	if _, ok := ds[name]; !ok {
		s.redirectFlash(w, r, "/catalog", "error", "Unknown dataset.")
		return
	}
	_, err := s.Users.Update(user.Email, func(u *store.User) error {
		if on {
			for _, req := range ds[name].Requires {
				if !u.Datasets[req] {
					return fmt.Errorf("%s requires %s: switch that on first", labelOf(ds, name), labelOf(ds, req))
				}
			}
		} else {
			for other, d := range ds {
				for _, req := range d.Requires {
					if req == name && u.Datasets[other] {
						return fmt.Errorf("%s requires %s: switch %s off first", labelOf(ds, other), labelOf(ds, name), labelOf(ds, other))
					}
				}
			}
		}
		if u.Datasets == nil {
			u.Datasets = map[string]bool{}
		}
		if on {
			u.Datasets[name] = true
		} else {
			delete(u.Datasets, name)
		}
		return nil
	})
	if err != nil {
		s.redirectFlash(w, r, "/catalog", "error", err.Error())
		return
	}
	state := "off"
	if on {
		state = "on"
	}
	s.Logger.Info("dataset switched", "user", user.Email, "dataset", name, "on", on)
	s.redirectFlash(w, r, "/catalog#datasets", "success", fmt.Sprintf("%s is %s. Your next `analyst pull` brings the change.", labelOf(ds, name), state))
}

// profile is the part of a table's catalog profile that the table page shows.
type profile struct {
	RowCount        int64          `json:"row_count"`
	ColumnCount     int            `json:"column_count"`
	FileSizeMB      *float64       `json:"file_size_mb"`
	AvgCompleteness *float64       `json:"avg_completeness"`
	MissingCells    int64          `json:"missing_cells"`
	MissingCellsPct *float64       `json:"missing_cells_pct"`
	DuplicateRows   int64          `json:"duplicate_rows"`
	VariableTypes   map[string]int `json:"variable_types"`
	DateRange       *struct {
		Column, Earliest, Latest string
	} `json:"date_range"`
	Alerts []struct {
		Column, Type, Message string
	} `json:"alerts"`
	Sampled       bool       `json:"sampled"`
	LastSync      *time.Time `json:"last_sync"`
	ProfiledAt    *time.Time `json:"profiled_at"`
	RelatedTables []struct {
		Table         string `json:"table"`
		JoinColumn    string `json:"join_column"`
		ForeignColumn string `json:"foreign_column"`
		Direction     string `json:"direction"`
		Description   string `json:"description"`
	} `json:"related_tables"`
	UsedByMetrics []struct{ Name, File string } `json:"used_by_metrics"`
	Columns       []columnProfile               `json:"columns"`
	SampleRows    []map[string]*string          `json:"sample_rows"`
}

type columnProfile struct {
	Name            string   `json:"name"`
	Type            string   `json:"type"`
	TypeCategory    string   `json:"type_category"`
	CompletenessPct *float64 `json:"completeness_pct"`
	NullCount       int64    `json:"null_count"`
	UniqueCount     int64    `json:"unique_count"`
	IsPrimaryKey    bool     `json:"is_primary_key"`
	SampleValues    []string `json:"sample_values"`
	Alerts          []struct{ Type, Message string }
	NumericStats    *struct {
		Min, Max, Mean, Median, Stddev *float64
		Zeros, Negative                int64
		Histogram                      *histogram
	} `json:"numeric_stats"`
	StringStats *struct {
		TopValues []struct {
			Value string
			Count int64
			Pct   *float64
		} `json:"top_values"`
	} `json:"string_stats"`
	DateStats *struct {
		Earliest, Latest string
		SpanDays         int64 `json:"span_days"`
		Histogram        *histogram
	} `json:"date_stats"`
	BooleanStats *struct {
		TrueCount  int64 `json:"true_count"`
		FalseCount int64 `json:"false_count"`
	} `json:"boolean_stats"`
}

type histogram struct {
	Bins   []string
	Counts []int64
}

// chart is a bar chart drawn as SVG on the server (the CSP forbids inline styles, and SVG
// attributes need none). Coordinates are in a 100 × 40 (vertical) or 100 × 6·n (horizontal) box.
type chart struct {
	Horizontal bool
	Height     int
	Bars       []bar
}

// bar is one bar; its coordinates are formatted once here rather than per attribute in the
// template (the table page has hundreds of them).
type bar struct {
	Label      string
	Value      int64
	X, Y, W, H string
}

// HTML draws the chart. It is built here, not in the template, because a table page has
// hundreds of bars; every label is escaped and every number is formatted by us.
func (c *chart) HTML() template.HTML {
	var b strings.Builder
	esc := template.HTMLEscapeString
	if c.Horizontal {
		b.WriteString(`<div class="hbars">`)
		for _, br := range c.Bars {
			fmt.Fprintf(&b, `<div class="hbar"><span class="label">%s</span><svg viewBox="0 0 100 5" preserveAspectRatio="none" aria-hidden="true"><rect width="%s" height="5"></rect></svg><span class="num">%s</span></div>`,
				esc(br.Label), br.W, fmtRows(br.Value))
		}
		b.WriteString(`</div>`)
		return template.HTML(b.String())
	}
	b.WriteString(`<svg class="chart" viewBox="0 0 100 40" preserveAspectRatio="none" role="img" aria-label="Distribution">`)
	for _, br := range c.Bars {
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s"><title>%s: %s</title></rect>`, br.X, br.Y, br.W, br.H, esc(br.Label), fmtRows(br.Value))
	}
	b.WriteString(`</svg>`)
	if n := len(c.Bars); n > 0 {
		fmt.Fprintf(&b, `<p class="axis"><span>%s</span><span>%s</span></p>`, esc(c.Bars[0].Label), esc(c.Bars[n-1].Label))
	}
	return template.HTML(b.String())
}

func coord(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func columnChart(c columnProfile) *chart {
	var labels []string
	var counts []int64
	horizontal := false
	switch {
	case c.NumericStats != nil && c.NumericStats.Histogram != nil:
		labels, counts = c.NumericStats.Histogram.Bins, c.NumericStats.Histogram.Counts
	case c.DateStats != nil && c.DateStats.Histogram != nil:
		labels, counts = c.DateStats.Histogram.Bins, c.DateStats.Histogram.Counts
	case c.StringStats != nil && len(c.StringStats.TopValues) > 0:
		horizontal = true
		for i, tv := range c.StringStats.TopValues {
			if i == 8 {
				break
			}
			labels, counts = append(labels, tv.Value), append(counts, tv.Count)
		}
	case c.BooleanStats != nil:
		horizontal = true
		labels, counts = []string{"true", "false"}, []int64{c.BooleanStats.TrueCount, c.BooleanStats.FalseCount}
	default:
		return nil
	}
	if len(counts) == 0 || len(counts) != len(labels) {
		return nil
	}
	var top int64 = 1
	for _, n := range counts {
		top = max(top, n)
	}
	ch := &chart{Horizontal: horizontal, Height: 40}
	if horizontal {
		ch.Height = 6 * len(counts)
	}
	slot := 100 / float64(len(counts))
	for i, n := range counts {
		frac := float64(n) / float64(top)
		b := bar{Label: labels[i], Value: n}
		if horizontal {
			b.X, b.Y, b.W, b.H = "0", coord(float64(6*i)+0.5), coord(max(frac*100, 0.5)), "5"
		} else {
			h := max(frac*40, 0.3)
			b.X, b.Y, b.W, b.H = coord(float64(i)*slot+slot*0.1), coord(40-h), coord(slot*0.8), coord(h)
		}
		ch.Bars = append(ch.Bars, b)
	}
	return ch
}

type columnView struct {
	columnProfile
	Kind     string
	Missing  float64
	Complete float64
	Chart    *chart
}

type relationView struct {
	Table, JoinColumn, ForeignColumn, Direction, Description string
	Y                                                        float64
}

// sampleCell is a sample value cut to 50 characters; Null marks a missing one.
type sampleCell struct {
	Text string
	Null bool
}

type tablePageView struct {
	Table      tableRow
	Profile    *profile
	Columns    []columnView
	SampleCols []string
	Sample     [][]sampleCell
	Relations  []relationView
	DiagramH   int
	Query      string
}

func (s *server) tablePage(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	t, ok := s.Config.Catalogue.Table(mux.Vars(r)["table"])
	if !ok || !s.Policy.CanSee(user, t) { // the same answer for hidden and missing tables
		s.renderError(w, r, http.StatusNotFound, "There is no such table.")
		return
	}
	s.renderCached(w, r, "table", t.Name, s.visibilityKey(user)+"\x00"+t.Name, func() (any, error) {
		return s.tablePageView(user, t)
	})
}

func (s *server) tablePageView(user *store.User, t config.Table) (*tablePageView, error) {
	rows, err := s.tableRows(user)
	if err != nil {
		return nil, err
	}
	v := &tablePageView{Query: fmt.Sprintf("SELECT * FROM %q LIMIT 100;", t.Name)}
	for _, row := range rows {
		if row.Name == t.Name {
			v.Table = row
		}
	}
	canSee := func(t config.Table) bool { return s.Policy.CanSee(user, t) }
	var raw []byte
	if cp, ok := s.catalog.Profile(t.Name, canSee); ok {
		if raw, err = json.Marshal(cp); err != nil {
			return nil, err
		}
	}
	if raw != nil {
		var p profile
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("profile of %s: %w", t.Name, err)
		}
		v.Profile = &p
		for _, c := range p.Columns {
			cv := columnView{columnProfile: c, Kind: strings.ToLower(c.TypeCategory), Chart: columnChart(c)}
			if c.CompletenessPct != nil {
				cv.Complete, cv.Missing = *c.CompletenessPct, 100-*c.CompletenessPct
			}
			v.Columns = append(v.Columns, cv)
			v.SampleCols = append(v.SampleCols, c.Name)
		}
		for _, rel := range p.RelatedTables {
			if other, ok := s.Config.Catalogue.Table(rel.Table); !ok || !canSee(other) {
				continue // a private neighbour stays unnamed (the catalog redacts it too)
			}
			v.Relations = append(v.Relations, relationView{Table: rel.Table, JoinColumn: rel.JoinColumn,
				ForeignColumn: rel.ForeignColumn, Direction: rel.Direction, Description: rel.Description,
				Y: float64(len(v.Relations)*40 + 20)})
		}
		v.DiagramH = max(len(v.Relations)*40, 40)
		for _, row := range p.SampleRows {
			cells := make([]sampleCell, len(v.SampleCols))
			for i, c := range v.SampleCols {
				if val := row[c]; val == nil {
					cells[i].Null = true
				} else {
					cells[i].Text = cutText(50, *val)
				}
			}
			v.Sample = append(v.Sample, cells)
		}
	}
	return v, nil
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func labelOf(ds map[string]config.Dataset, name string) string { return cmp.Or(ds[name].Label, name) }
