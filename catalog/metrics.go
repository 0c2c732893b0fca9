package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MetricDef is one business metric as written in docs/metrics/<category>/<name>.yml.
type MetricDef struct {
	Name                string       `yaml:"name" json:"name"`
	DisplayName         string       `yaml:"display_name" json:"display_name"`
	Category            string       `yaml:"category" json:"category"`
	Type                string       `yaml:"type" json:"type"`
	Unit                string       `yaml:"unit" json:"unit"`
	Grain               string       `yaml:"grain" json:"grain"`
	TimeColumn          string       `yaml:"time_column" json:"time_column"`
	Description         string       `yaml:"description" json:"description"`
	Notes               []string     `yaml:"notes" json:"notes"`
	Validation          *MetricCheck `yaml:"validation" json:"validation"`
	Dimensions          []string     `yaml:"dimensions" json:"dimensions"`
	Table               string       `yaml:"table" json:"table"`
	Tables              []string     `yaml:"tables" json:"tables"`
	Expression          string       `yaml:"expression" json:"expression"`
	Synonyms            []string     `yaml:"synonyms" json:"synonyms"`
	SQL                 string       `yaml:"sql" json:"sql"`
	SQLByCompany        string       `yaml:"sql_by_company" json:"sql_by_company"`
	SQLByTechnology     string       `yaml:"sql_by_technology" json:"sql_by_technology"`
	SQLByAction         string       `yaml:"sql_by_action" json:"sql_by_action"`
	SQLCustomerInternal string       `yaml:"sql_customer_vs_internal" json:"sql_customer_vs_internal"`
	SQLSingletenant     string       `yaml:"sql_singletenant_allocation" json:"sql_singletenant_allocation"`
	SQLMultitenant      string       `yaml:"sql_multitenant_allocation" json:"sql_multitenant_allocation"`
	CostAllocationGuide string       `yaml:"cost_allocation_guide" json:"cost_allocation_guide"`

	File string `yaml:"-" json:"file"` // "<category>/<file>.yml"
	Line int    `yaml:"-" json:"-"`
}

// MetricCheck is how a metric was validated: a sentence, or {method, result}.
type MetricCheck struct {
	Method string `yaml:"method" json:"method"`
	Result string `yaml:"result" json:"result"`
}

func (m *MetricCheck) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		m.Result = n.Value
		return nil
	}
	type plain MetricCheck
	return n.Decode((*plain)(m))
}

// AllTables lists the tables the metric reads: table plus tables, without repeats.
func (m *MetricDef) AllTables() []string {
	var out []string
	for _, t := range append([]string{m.Table}, m.Tables...) {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// MetricError is a problem in a metric file, with the file, line and key.
type MetricError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *MetricError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// segment is what a metric category or file name may be: no dots, slashes or upper case.
var segment = regexp.MustCompile(`^[a-z0-9_][a-z0-9_-]*$`)

// metricKeys are the keys a metric file may use.
var metricKeys = []string{"name", "display_name", "category", "type", "unit", "grain", "time_column", "description",
	"notes", "validation", "dimensions", "table", "tables", "expression", "synonyms", "sql", "sql_by_company",
	"sql_by_technology", "sql_by_action", "sql_customer_vs_internal", "sql_singletenant_allocation",
	"sql_multitenant_allocation", "cost_allocation_guide"}

// LoadMetrics reads every docs/metrics/<category>/<name>.yml under dir. A file holds one
// metric (a mapping) or several (a list of mappings). knownTable, when not nil, says whether
// a table name exists; a metric naming an unknown table is an error. Metrics with problems
// are left out and reported in the returned error (errors.Join of *MetricError); the others
// load. A missing dir means no metrics.
func LoadMetrics(dir string, knownTable func(string) bool) ([]*MetricDef, error) {
	var out []*MetricDef
	var errs []error
	cats, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, c := range cats {
		if !c.IsDir() || strings.HasPrefix(c.Name(), ".") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, c.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			name := f.Name()
			if f.IsDir() || !(strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml")) || strings.HasPrefix(name, ".") {
				continue
			}
			rel := c.Name() + "/" + name
			ms, err := loadMetricFile(filepath.Join(dir, c.Name(), name), rel, knownTable)
			errs = append(errs, err...)
			out = append(out, ms...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, errors.Join(errs...)
}

func loadMetricFile(path, rel string, knownTable func(string) bool) ([]*MetricDef, []error) {
	display := "docs/metrics/" + rel
	fail := func(line int, key, format string, args ...any) []error {
		return []error{&MetricError{File: display, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}}
	}
	category, stem := filepath.Dir(rel), strings.TrimSuffix(strings.TrimSuffix(filepath.Base(rel), ".yml"), ".yaml")
	if !segment.MatchString(category) || !segment.MatchString(stem) {
		return nil, fail(0, "", "metric folder and file names must be lower-case letters, digits, _ or -")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{err}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fail(0, "", "not valid YAML: %v", err)
	}
	if len(root.Content) == 0 {
		return nil, fail(0, "", "the file is empty")
	}
	doc := root.Content[0]
	items := []*yaml.Node{doc}
	if doc.Kind == yaml.SequenceNode {
		items = doc.Content
	}
	var out []*MetricDef
	var errs []error
	for i, n := range items {
		where := ""
		if doc.Kind == yaml.SequenceNode {
			where = fmt.Sprintf("[%d].", i)
		}
		if n.Kind != yaml.MappingNode {
			errs = append(errs, fail(n.Line, strings.TrimSuffix(where, "."), "a metric must be a mapping of keys")...)
			continue
		}
		bad := false
		for k := 0; k+1 < len(n.Content); k += 2 {
			key := n.Content[k]
			if !slices.Contains(metricKeys, key.Value) {
				msg := "unknown key"
				if s := closest(key.Value, metricKeys); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
				errs = append(errs, fail(key.Line, where+key.Value, "%s", msg)...)
				bad = true
			}
		}
		m := &MetricDef{File: rel, Line: n.Line}
		if err := n.Decode(m); err != nil {
			var te *yaml.TypeError
			msg := err.Error()
			if errors.As(err, &te) {
				msg = strings.Join(te.Errors, "; ")
			}
			errs = append(errs, fail(n.Line, strings.TrimSuffix(where, "."), "%s", msg)...)
			continue
		}
		line := func(key string) int {
			for k := 0; k+1 < len(n.Content); k += 2 {
				if n.Content[k].Value == key {
					return n.Content[k].Line
				}
			}
			return n.Line
		}
		if strings.TrimSpace(m.Name) == "" {
			errs = append(errs, fail(n.Line, where+"name", "is required")...)
			bad = true
		}
		if m.Category == "" {
			m.Category = category
		} else if m.Category != category {
			errs = append(errs, fail(line("category"), where+"category", "%q does not match the folder %q", m.Category, category)...)
			bad = true
		}
		if len(m.AllTables()) == 0 {
			errs = append(errs, fail(n.Line, where+"table", "is required (table: NAME or tables: [NAME, ...])")...)
			bad = true
		}
		if knownTable != nil {
			for _, t := range m.AllTables() {
				if !knownTable(t) {
					key := "table"
					if t != m.Table {
						key = "tables"
					}
					errs = append(errs, fail(line(key), where+key, "table %q is not in the catalogue", t)...)
					bad = true
				}
			}
		}
		if !bad {
			out = append(out, m)
		}
	}
	return out, errs
}

// closest suggests the known key nearest to a misspelt one.
func closest(word string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
