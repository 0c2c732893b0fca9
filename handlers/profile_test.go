package handlers_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ai-data-analyst/analyst/catalog"
	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/store"
)

// profiledInstance has a public table that references a private one, and a metric on it.
func profiledInstance(t *testing.T) *config.Config {
	t.Helper()
	return testenv.Instance(t, map[string]string{
		"config/instance.yaml": `instance: {name: Profile test}
data_source:
  type: csv
  csv: {path: source}
access:
  private_folders: [hr]
`,
		"docs/data_description.md": "```yaml\n" + `tables:
  - id: shop.orders
    name: orders
    folder: shop
    description: Orders
    primary_key: id
    sync_strategy: partitioned
    partition_by: placed
    partition_granularity: month
    csv: {path: orders.csv}
    foreign_keys:
      - {column: clerk_id, references: staff.clerk_id}
  - id: hr.staff
    name: staff
    folder: hr
    description: Staff and salaries
    primary_key: clerk_id
    sync_strategy: full_refresh
    csv: {path: staff.csv}
` + "```\n",
		"docs/metrics/sales/revenue.yml": "name: revenue\ndisplay_name: Revenue\ntable: orders\nexpression: sum(amount)\n",
		"source/orders.csv":              "id,amount,placed,clerk_id\n1,10.50,2024-01-02,7\n2,20.25,2024-01-03,7\n3,,2024-02-01,8\n4,5.00,2024-02-09,8\n",
		"source/staff.csv":               "clerk_id,name,salary\n7,Ann,5100\n8,Bob,4900\n",
	})
}

func TestProfileStageWritesPublicAndPrivateFiles(t *testing.T) {
	cfg := profiledInstance(t)
	db := testenv.OpenStore(t, cfg.Paths.Store)
	log, err := pipelineLog(t, db)
	if err != nil {
		t.Fatal(err)
	}
	env, r := startPipeline(t, cfg, db, log)
	t.Cleanup(func() { env.Close() })
	if run := syncTables(t, env, r, "orders", "staff"); run.Status != store.RunSucceeded {
		t.Fatalf("sync: %+v", run)
	}
	files := catalog.FilesFor(cfg.Paths)
	pub, err := catalog.ReadProfiles(files.Public)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := catalog.ReadProfiles(files.Private)
	if err != nil {
		t.Fatal(err)
	}
	orders := pub.Tables["orders"]
	if orders == nil || pub.Tables["staff"] != nil || priv.Tables["staff"] == nil || priv.Tables["orders"] != nil {
		t.Fatalf("public file has %v, private file has %v", keys(pub.Tables), keys(priv.Tables))
	}
	raw, _ := os.ReadFile(files.Public)
	for _, secret := range []string{"staff", "Ann", "5100", "salar"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the public profiles file mentions %q", secret)
		}
	}
	// Every partition profiled; DuckDB counts the same rows.
	var rows int64
	if err := duck(t).QueryRow(`SELECT count(*) FROM read_parquet(?, union_by_name = true)`, filepath.Join(cfg.Paths.Parquet, "shop/orders/*.parquet")).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if orders.RowCount != rows || rows != 4 || orders.Files != 2 || orders.TableID != "shop.orders" || orders.LastSync == nil || orders.Stale {
		t.Errorf("orders profile: rows %d (DuckDB %d), files %d, id %q, last sync %v", orders.RowCount, rows, orders.Files, orders.TableID, orders.LastSync)
	}
	if len(orders.UsedByMetrics) != 1 || orders.UsedByMetrics[0].File != "sales/revenue.yml" {
		t.Errorf("used_by_metrics = %+v", orders.UsedByMetrics)
	}
	if staff := priv.Tables["staff"]; len(staff.RelatedTables) != 1 || staff.RelatedTables[0].Direction != "has_many" || staff.RelatedTables[0].Table != "orders" {
		t.Errorf("staff relations = %+v", staff.RelatedTables)
	}
	if fi, err := os.Stat(files.Private); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private profiles file mode: %v %v", fi.Mode(), err)
	}

	// A failed profiling keeps the previous profile, marked stale, and the run still succeeds.
	testenv.WriteFile(t, files.Private, "{not json")
	if run := syncTables(t, env, r, "orders"); run.Status != store.RunSucceeded {
		t.Fatalf("sync with a failing profile: %+v", run)
	}
	pub, err = catalog.ReadProfiles(files.Public)
	if err != nil {
		t.Fatal(err)
	}
	if o := pub.Tables["orders"]; o == nil || !o.Stale || !strings.Contains(o.StaleError, "corrupt profiles file") {
		t.Fatalf("orders after a failed profile: %+v", o)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
