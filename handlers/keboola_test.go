package handlers_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	_ "github.com/ai-data-analyst/analyst/connectors/keboola"
	"github.com/ai-data-analyst/analyst/connectors/keboola/keboolatest"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/store"
)

// TestKeboolaIncrementalThroughPipeline syncs a Keboola table twice through every stage: a
// full first load from sliced, gzipped S3 exports, then only the rows changed since.
func TestKeboolaIncrementalThroughPipeline(t *testing.T) {
	kbc := keboolatest.New(t, keboolatest.Config{Provider: "aws", Sliced: true, SliceRows: 2})
	kbc.SetEnv(t)
	old := time.Now().Add(-30 * 24 * time.Hour)
	kbc.AddTable(keboolatest.Table{
		ID: "in.c-crm.deals", Columns: []string{"id", "amount", "closed_on"}, PrimaryKey: []string{"id"},
		ColumnMetadata: map[string][]keboolatest.Meta{
			"id":        {{Key: "KBC.datatype.basetype", Value: "INTEGER", Provider: "user"}},
			"amount":    {{Key: "KBC.datatype.basetype", Value: "NUMERIC", Provider: "user"}, {Key: "KBC.datatype.length", Value: "12,2", Provider: "user"}},
			"closed_on": {{Key: "KBC.datatype.basetype", Value: "DATE", Provider: "user"}},
		},
		Rows: []keboolatest.Row{
			{Values: []string{"1", "100.10", "2024-01-01"}, Changed: old},
			{Values: []string{"2", "200.20", "2024-01-02"}, Changed: old},
			{Values: []string{"3", "300.30", ""}, Changed: old},
		},
	})
	home := t.TempDir()
	testenv.WriteFile(t, filepath.Join(home, "config/instance.yaml"), fmt.Sprintf(`instance: {name: Keboola}
data_source:
  type: keboola
  keboola: {stack_url: %q, storage_token: "${KBC_TOKEN}", project_id: "1"}
`, kbc.URL))
	testenv.WriteFile(t, filepath.Join(home, ".env"), "KBC_TOKEN="+kbc.Token+"\n")
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "```yaml\nfolder_mapping: {in.c-crm: crm}\ntables:\n"+
		"  - {id: in.c-crm.deals, name: deals, description: Deals, primary_key: id, sync_strategy: incremental, incremental_window_days: 1}\n```\n")
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.OpenStore(t, cfg.Paths.Store)
	log, _ := pipelineLog(t, db)
	env, r := startPipeline(t, cfg, db, log)
	t.Cleanup(func() { env.Close() })

	if run := syncTables(t, env, r, "deals"); run.Status != store.RunSucceeded || run.Tables[0].Rows != 3 {
		t.Fatalf("first sync: %s %+v", run.Status, run.Tables[0])
	}
	path := filepath.Join(cfg.Paths.Parquet, "crm/deals.parquet")
	var typ string
	duck(t).QueryRow(`SELECT column_type FROM (DESCRIBE SELECT * FROM read_parquet(?)) WHERE column_name = 'amount'`, path).Scan(&typ)
	if typ != "DECIMAL(12,2)" {
		t.Fatalf("amount is %s, want DECIMAL(12,2)", typ)
	}

	kbc.AddTable(keboolatest.Table{
		ID: "in.c-crm.deals", Columns: []string{"id", "amount", "closed_on"}, PrimaryKey: []string{"id"},
		ColumnMetadata: map[string][]keboolatest.Meta{
			"id":        {{Key: "KBC.datatype.basetype", Value: "INTEGER", Provider: "user"}},
			"amount":    {{Key: "KBC.datatype.basetype", Value: "NUMERIC", Provider: "user"}, {Key: "KBC.datatype.length", Value: "12,2", Provider: "user"}},
			"closed_on": {{Key: "KBC.datatype.basetype", Value: "DATE", Provider: "user"}},
		},
		Rows: []keboolatest.Row{
			{Values: []string{"1", "100.10", "2024-01-01"}, Changed: old},
			{Values: []string{"2", "250.00", "2024-01-02"}, Changed: time.Now()},
			{Values: []string{"3", "300.30", ""}, Changed: old},
			{Values: []string{"4", "400.40", "2024-02-01"}, Changed: time.Now()},
		},
	})
	if run := syncTables(t, env, r, "deals"); run.Status != store.RunSucceeded || run.Tables[0].Rows != 4 {
		t.Fatalf("second sync: %s %+v", run.Status, run.Tables[0])
	}
	exports := kbc.Exports()
	if len(exports) != 2 || exports[0].Get("changedSince") != "" || exports[1].Get("changedSince") == "" {
		t.Fatalf("the second export must ask only for changes: %v", exports)
	}
	var n int
	var amount2 string
	duck(t).QueryRow(`SELECT count(*), max(amount) FILTER (WHERE id = 2)::VARCHAR FROM read_parquet(?)`, path).Scan(&n, &amount2)
	if n != 4 || amount2 != "250.00" {
		t.Fatalf("after the upsert: %d rows, id 2 amount %s", n, amount2)
	}
}
