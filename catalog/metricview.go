package catalog

import (
	"regexp"
	"strings"
)

// MetricView is a metric as the portal's metric modal reads it (GET /api/metrics/{category}/{name}).
type MetricView struct {
	Name            string                `json:"name"`
	DisplayName     string                `json:"display_name"`
	Category        string                `json:"category"`
	CategoryColor   string                `json:"category_color"`
	File            string                `json:"file"`
	Metadata        MetricMetadata        `json:"metadata"`
	Overview        MetricOverview        `json:"overview"`
	Validation      *MetricValidation     `json:"validation"`
	Dimensions      []string              `json:"dimensions"`
	Notes           MetricNotes           `json:"notes"`
	SQLExamples     map[string]SQLExample `json:"sql_examples"`
	Technical       MetricTechnical       `json:"technical"`
	SpecialSections map[string]string     `json:"special_sections"`
}

// MetricMetadata is the metric's kind and time grain.
type MetricMetadata struct {
	Type       string `json:"type"`
	Unit       string `json:"unit"`
	Grain      string `json:"grain"`
	TimeColumn string `json:"time_column"`
}

// MetricOverview is what the metric measures; key_insights are the first 5 notes.
type MetricOverview struct {
	Description string   `json:"description"`
	KeyInsights []string `json:"key_insights"`
}

// MetricValidation says how the metric was checked against a trusted figure.
type MetricValidation struct {
	Status      string `json:"status"`
	Accuracy    string `json:"accuracy"`
	Method      string `json:"method"`
	Result      string `json:"result"`
	LastUpdated string `json:"last_updated"`
}

// MetricNotes are all notes and the first 5.
type MetricNotes struct {
	All         []string `json:"all"`
	KeyInsights []string `json:"key_insights"`
}

// SQLExample is one of the metric's queries; complexity is simple or advanced.
type SQLExample struct {
	Title      string `json:"title"`
	Query      string `json:"query"`
	Complexity string `json:"complexity"`
}

// MetricTechnical is where the metric's data comes from.
type MetricTechnical struct {
	Table       string       `json:"table"`
	Tables      []string     `json:"tables"`
	Expression  string       `json:"expression"`
	Synonyms    []string     `json:"synonyms"`
	DataSources []DataSource `json:"data_sources"`
}

// DataSource is a table a metric reads: the primary one, or one joined (via a column).
type DataSource struct {
	Table string `json:"table"`
	Type  string `json:"type"`
	Via   string `json:"via,omitempty"`
}

// MetricSummary is a metric in a list.
type MetricSummary struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"display_name"`
	Category    string   `json:"category"`
	File        string   `json:"file"`
	Grain       string   `json:"grain"`
	Description string   `json:"description"`
	Tables      []string `json:"tables"`
}

var categoryColors = map[string]string{
	"finance": "#0d9668", "product_usage": "#b45309", "sales_revenue": "#0073D1", "weekly_leadership_kpis": "#0073D1",
}

var (
	accuracyRe = regexp.MustCompile(`\d+(?:\.\d+)?%`)
	dateRe     = regexp.MustCompile(`\d{4}-\d{2}-\d{2}`)
	joinRe     = regexp.MustCompile(`(?i)joins? to (\w+)(?: via (\w+))?`)
	spaceRe    = regexp.MustCompile(`\s+`)
	// advancedRe marks queries worth collapsing. The original upper-cased the query and then
	// looked for lower-case words too, which never matched; here all are case-insensitive.
	advancedRe = regexp.MustCompile(`(?i)\b(WITH|RECURSIVE|WINDOW|PARTITION|OVER|allocation|singletenant|multitenant)\b`)
)

var sqlFields = []struct{ key, title string }{
	{"sql", "Basic Query"}, {"sql_by_company", "By Company"}, {"sql_by_technology", "By Technology"},
	{"sql_by_action", "By Action"}, {"sql_customer_vs_internal", "Customer vs Internal"},
	{"sql_singletenant_allocation", "Singletenant Allocation"}, {"sql_multitenant_allocation", "Multitenant Allocation"},
}

// View turns a metric into the shape the portal shows.
func (m *MetricDef) View() *MetricView {
	v := &MetricView{
		Name: m.Name, DisplayName: m.DisplayName, Category: m.Category, File: m.File,
		CategoryColor: categoryColors[m.Category],
		Metadata:      MetricMetadata{Type: m.Type, Unit: m.Unit, Grain: m.Grain, TimeColumn: m.TimeColumn},
		Dimensions:    nonNil(m.Dimensions),
		Notes:         MetricNotes{All: nonNil(m.Notes), KeyInsights: nonNil(first(m.Notes, 5))},
		SQLExamples:   map[string]SQLExample{},
		Technical: MetricTechnical{Table: m.Table, Tables: m.AllTables(), Expression: m.Expression,
			Synonyms: nonNil(m.Synonyms)},
		SpecialSections: map[string]string{},
	}
	if v.DisplayName == "" {
		v.DisplayName = m.Name
	}
	if v.CategoryColor == "" {
		v.CategoryColor = "#6B7280"
	}
	v.Overview = MetricOverview{Description: strings.TrimSpace(spaceRe.ReplaceAllString(m.Description, " ")), KeyInsights: v.Notes.KeyInsights}
	if c := m.Validation; c != nil {
		val := &MetricValidation{Status: "validated", Method: c.Method, Result: c.Result}
		val.Accuracy = accuracyRe.FindString(c.Result)
		if low := strings.ToLower(c.Result); val.Accuracy == "" && (strings.Contains(low, "exactly") || strings.Contains(low, "perfectly") || strings.Contains(low, "match")) {
			val.Accuracy = "100%"
		}
		val.LastUpdated = dateRe.FindString(c.Result)
		v.Validation = val
	}
	queries := map[string]string{"sql": m.SQL, "sql_by_company": m.SQLByCompany, "sql_by_technology": m.SQLByTechnology,
		"sql_by_action": m.SQLByAction, "sql_customer_vs_internal": m.SQLCustomerInternal,
		"sql_singletenant_allocation": m.SQLSingletenant, "sql_multitenant_allocation": m.SQLMultitenant}
	for _, f := range sqlFields {
		q := strings.TrimSpace(queries[f.key])
		if q == "" {
			continue
		}
		cx := "simple"
		if advancedRe.MatchString(q) || strings.Count(q, "\n")+1 > 20 {
			cx = "advanced"
		}
		v.SQLExamples[f.key] = SQLExample{Title: f.title, Query: q, Complexity: cx}
	}
	for i, t := range m.AllTables() {
		typ := "primary"
		if i > 0 {
			typ = "join"
		}
		v.Technical.DataSources = append(v.Technical.DataSources, DataSource{Table: t, Type: typ})
	}
	for _, n := range m.Notes {
		if j := joinRe.FindStringSubmatch(n); j != nil {
			v.Technical.DataSources = append(v.Technical.DataSources, DataSource{Table: j[1], Type: "join", Via: j[2]})
		}
	}
	if g := strings.TrimSpace(m.CostAllocationGuide); g != "" {
		v.SpecialSections["cost_allocation_guide"] = g
	}
	return v
}

// Summary is the metric's entry in a list.
func (m *MetricDef) Summary() MetricSummary {
	d := m.DisplayName
	if d == "" {
		d = m.Name
	}
	return MetricSummary{Name: m.Name, DisplayName: d, Category: m.Category, File: m.File, Grain: m.Grain,
		Description: strings.TrimSpace(spaceRe.ReplaceAllString(m.Description, " ")), Tables: m.AllTables()}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
