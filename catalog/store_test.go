package catalog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/store"
)

// testInstance: sales (listed), hr (private folder), misc (in no category), with a metric
// on sales only and one joining the private table.
func testInstance(t *testing.T) *config.Config {
	t.Helper()
	return testenv.Instance(t, map[string]string{
		"config/instance.yaml": `instance: {name: Catalog test}
data_source: {type: csv, csv: {path: source}}
access: {private_folders: [hr]}
catalog:
  categories:
    sales: {label: Sales, icon: S}
    hr: {label: People, icon: P}
    extra: {label: Extra}
  order: [hr, sales]
`,
		"docs/data_description.md": "```yaml\n" + `tables:
  - {id: sales.orders, name: orders, folder: sales, description: Orders, primary_key: id, sync_strategy: full_refresh,
     foreign_keys: [{column: clerk_id, references: staff.clerk_id}, {column: item_id, references: items.item_id}]}
  - {id: hr.staff, name: staff, folder: hr, description: Staff, primary_key: clerk_id, sync_strategy: full_refresh}
  - {id: misc.items, name: items, folder: misc, description: Items, primary_key: item_id, sync_strategy: full_refresh}
` + "```\n",
		"docs/metrics/sales/revenue.yml": `name: revenue
display_name: Revenue
type: sum
unit: USD
grain: monthly
description: |
  Sum of order
  amounts.
notes: [Excludes refunds, "Joins to items via item_id"]
validation: {method: compared with finance, result: "Matches the ledger within 0.5% on 2024-05-01"}
table: orders
sql: SELECT sum(amount) FROM orders
sql_by_company: |
  WITH x AS (SELECT 1) SELECT * FROM x
`,
		"docs/metrics/sales/cost_per_clerk.yml": "- name: cost_per_clerk\n  tables: [orders, staff]\n",
	})
}

func everyone(config.Table) bool { return true }

func publicOnly(cfg *config.Config) func(config.Table) bool {
	return func(t config.Table) bool { return !cfg.IsPrivate(t) }
}

func sampleProfile(name string) *TableProfile {
	v := "secret-sample-" + name
	return &TableProfile{Name: name, RowCount: 3, AvgCompleteness: 97.5,
		Columns:    []ColumnProfile{{Name: "c", SampleValues: []string{v}, StringStats: &StringStats{TopValues: []TopValue{{Value: v, Count: 3, Pct: 100}}}}},
		SampleRows: []SampleRow{{Columns: []string{"c"}, Values: []*string{&v}}}}
}

func putAll(t *testing.T, cfg *config.Config) Files {
	t.Helper()
	fs := FilesFor(cfg.Paths)
	metrics, err := LoadMetrics(filepath.Join(cfg.Paths.DocsDir, "metrics"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range cfg.Catalogue.Tables {
		p := sampleProfile(tb.Name)
		last := time.Date(2024, 5, 1, 6, 0, 0, 0, time.UTC)
		Enrich(p, cfg.Catalogue, tb, &store.TableState{LastSync: last, Strategy: "full_refresh"}, metrics)
		if err := fs.Put(cfg, tb, p, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

func TestPrivateTablesStayOutOfPublicFileAndViews(t *testing.T) {
	cfg := testInstance(t)
	fs := putAll(t, cfg)
	pub, _ := os.ReadFile(fs.Public)
	for _, leak := range []string{"secret-sample-staff", `"staff"`, "cost_per_clerk", "clerk_id\",\n      \"foreign_column"} {
		if strings.Contains(string(pub), leak) {
			t.Errorf("public profiles.json contains %q", leak)
		}
	}
	priv, _ := os.ReadFile(fs.Private)
	if !strings.Contains(string(priv), "secret-sample-staff") {
		t.Error("private profiles file lacks the private table")
	}
	// Both files are valid JSON in the original's wrapped form.
	var wrapped struct {
		GeneratedAt string                     `json:"generated_at"`
		Version     string                     `json:"version"`
		Tables      map[string]json.RawMessage `json:"tables"`
	}
	if err := json.Unmarshal(pub, &wrapped); err != nil || wrapped.Version != "1.0" || len(wrapped.Tables) != 2 {
		t.Fatalf("profiles.json: %v %+v", err, wrapped)
	}

	s := NewStore(cfg, nil)
	std := publicOnly(cfg)
	if _, ok := s.Profile("staff", std); ok {
		t.Error("a standard analyst got the private profile")
	}
	if _, ok := s.Profile("hr.staff", std); ok {
		t.Error("a standard analyst got the private profile by id")
	}
	if p, ok := s.Profile("staff", everyone); !ok || p.Columns[0].SampleValues[0] != "secret-sample-staff" {
		t.Errorf("a privileged analyst cannot read the private profile: %v", ok)
	}
	p, ok := s.Profile("orders", std)
	if !ok {
		t.Fatal("public profile missing")
	}
	if len(p.RelatedTables) != 1 || p.RelatedTables[0].Table != "items" {
		t.Errorf("standard analyst sees relations %+v", p.RelatedTables)
	}
	if len(p.UsedByMetrics) != 1 || p.UsedByMetrics[0].Name != "revenue" {
		t.Errorf("standard analyst sees metrics %+v", p.UsedByMetrics)
	}
	if p.Freshness == nil || p.Freshness.AgeHours == nil || *p.Freshness.AgeHours <= 0 {
		t.Errorf("freshness %+v", p.Freshness)
	}
	if _, ok := s.Profile("nope", everyone); ok {
		t.Error("unknown table has a profile")
	}

	// A table that became private leaves the public file at the next write.
	cfg.Instance.Access.PrivateFolders = append(cfg.Instance.Access.PrivateFolders, "misc")
	items, _ := cfg.Catalogue.Table("items")
	if err := fs.Put(cfg, items, sampleProfile("items"), time.Now()); err != nil {
		t.Fatal(err)
	}
	pubFile, _ := ReadProfiles(fs.Public)
	if _, ok := pubFile.Tables["items"]; ok {
		t.Error("items stayed in the public file after becoming private")
	}
	// The store sees the rewritten files.
	if _, ok := s.Profile("items", publicOnly(cfg)); ok {
		t.Error("a standard analyst still gets items after it became private")
	}
	if p, ok := s.Profile("items", everyone); !ok || p.Columns[0].SampleValues[0] != "secret-sample-items" {
		t.Error("the store did not reread the changed files")
	}
}

func TestCatalogGroupsAndFilters(t *testing.T) {
	cfg := testInstance(t)
	putAll(t, cfg)
	st := &store.SyncState{}
	st.Set("sales.orders", store.TableState{TableName: "orders", Rows: 1234, Columns: 4, LastSync: time.Now()})
	if err := st.Save(filepath.Join(cfg.Paths.Metadata, "sync_state.json"), time.Now()); err != nil {
		t.Fatal(err)
	}
	s := NewStore(cfg, nil)
	folders := func(v CatalogView) (out []string) {
		for _, c := range v.Categories {
			for _, tb := range c.Tables {
				out = append(out, c.Label+":"+tb.Name)
			}
		}
		return out
	}
	all := s.Catalog(everyone)
	if got := strings.Join(folders(all), ","); got != "People:staff,Sales:orders,Other:items" {
		t.Errorf("privileged catalog = %s", got)
	}
	std := s.Catalog(publicOnly(cfg))
	if got := strings.Join(folders(std), ","); got != "Sales:orders,Other:items" {
		t.Errorf("standard catalog = %s (the private category must not show)", got)
	}
	if std.TotalRows != 1234 || std.TableCount != 2 || !std.Categories[0].Tables[0].Profiled {
		t.Errorf("standard catalog totals: %+v", std)
	}
	if len(std.Metrics) != 1 || std.Metrics[0].Name != "revenue" || len(all.Metrics) != 2 {
		t.Errorf("metrics standard %+v, all %+v", std.Metrics, all.Metrics)
	}
}

func TestMetricView(t *testing.T) {
	cfg := testInstance(t)
	s := NewStore(cfg, nil)
	v, err := s.Metric("sales", "revenue.yml", publicOnly(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if v.DisplayName != "Revenue" || v.CategoryColor != "#6B7280" || v.Overview.Description != "Sum of order amounts." ||
		v.Validation == nil || v.Validation.Accuracy != "0.5%" || v.Validation.LastUpdated != "2024-05-01" {
		t.Errorf("view %+v", v)
	}
	if v.SQLExamples["sql"].Complexity != "simple" || v.SQLExamples["sql_by_company"].Complexity != "advanced" || v.SQLExamples["sql_by_company"].Title != "By Company" {
		t.Errorf("sql examples %+v", v.SQLExamples)
	}
	if len(v.Technical.DataSources) != 2 || v.Technical.DataSources[1] != (DataSource{Table: "items", Type: "join", Via: "item_id"}) {
		t.Errorf("data sources %+v", v.Technical.DataSources)
	}
	for _, bad := range [][2]string{{"..", "revenue"}, {"sales", "../../config/instance"}, {"Sales", "revenue"}, {"sales", "a/b"}, {"", "revenue"}} {
		if _, err := s.Metric(bad[0], bad[1], everyone); !errors.Is(err, ErrInvalidMetricPath) {
			t.Errorf("Metric(%q, %q) = %v, want invalid path", bad[0], bad[1], err)
		}
	}
	if _, err := s.Metric("sales", "cost_per_clerk", publicOnly(cfg)); !errors.Is(err, ErrMetricNotFound) {
		t.Errorf("metric on a private table for a standard analyst: %v", err)
	}
	if _, err := s.Metric("sales", "cost_per_clerk", everyone); err != nil {
		t.Errorf("metric on a private table for a privileged analyst: %v", err)
	}
	if _, err := s.Metric("sales", "missing", everyone); !errors.Is(err, ErrMetricNotFound) {
		t.Errorf("missing metric: %v", err)
	}
}

func TestMetricValidation(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFile(t, filepath.Join(dir, "finance/ok.yml"), "name: ok\ntable: orders\n")
	testenv.WriteFile(t, filepath.Join(dir, "finance/typo.yml"), "name: typo\ntable: orders\ndescripton: x\n")
	testenv.WriteFile(t, filepath.Join(dir, "finance/no_table.yml"), "name: no_table\n")
	testenv.WriteFile(t, filepath.Join(dir, "finance/unknown.yml"), "name: unknown\ntables: [orders, ghosts]\n")
	testenv.WriteFile(t, filepath.Join(dir, "finance/wrong_cat.yml"), "name: w\ncategory: sales\ntable: orders\n")
	testenv.WriteFile(t, filepath.Join(dir, "finance/bad_type.yml"), "name: b\ntable: orders\nnotes: {a: 1}\n")
	testenv.WriteFile(t, filepath.Join(dir, "finance/broken.yml"), "name: [unclosed\n")
	ms, err := LoadMetrics(dir, func(n string) bool { return n == "orders" })
	if len(ms) != 1 || ms[0].Name != "ok" || ms[0].Category != "finance" {
		t.Errorf("loaded %+v", ms)
	}
	want := []string{
		"docs/metrics/finance/typo.yml:3: descripton: unknown key (did you mean description?)",
		"docs/metrics/finance/no_table.yml:1: table: is required",
		`docs/metrics/finance/unknown.yml:2: tables: table "ghosts" is not in the catalogue`,
		`docs/metrics/finance/wrong_cat.yml:2: category: "sales" does not match the folder "finance"`,
		"docs/metrics/finance/bad_type.yml:1: ",
		"docs/metrics/finance/broken.yml: not valid YAML",
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q:\n%v", w, err)
		}
	}
}

func TestRelationsBothWays(t *testing.T) {
	cfg := testInstance(t)
	staff, _ := cfg.Catalogue.Table("staff")
	orders, _ := cfg.Catalogue.Table("orders")
	if r := Relations(cfg.Catalogue, staff); len(r) != 1 || r[0] != (Relation{Table: "orders", JoinColumn: "clerk_id", ForeignColumn: "clerk_id", Direction: "has_many", Description: r[0].Description}) || r[0].Description == "" {
		t.Errorf("staff relations %+v", r)
	}
	r := Relations(cfg.Catalogue, orders)
	if len(r) != 2 || r[0].Direction != "belongs_to" || r[1].Table != "items" || r[1].ForeignColumn != "item_id" {
		t.Errorf("orders relations %+v", r)
	}
}
