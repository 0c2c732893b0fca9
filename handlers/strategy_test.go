package handlers_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// pipelineFor loads an instance with the given table catalogue (YAML list items) and runs the
// stages on a bbolt log.
func pipelineFor(t *testing.T, tables string, files map[string]string) (*config.Config, *handlers.Env, *pipeline.Router, *pipeline.BoltPubSub) {
	t.Helper()
	home := t.TempDir()
	testenv.WriteFile(t, filepath.Join(home, "config/instance.yaml"), "instance: {name: Strategy test}\ndata_source:\n  type: csv\n  csv: {path: source}\n")
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "```yaml\ntables:\n"+tables+"```\n")
	for name, content := range files {
		testenv.WriteFile(t, filepath.Join(home, "source", name), content)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.OpenStore(t, cfg.Paths.Store)
	log, err := pipelineLog(t, db)
	if err != nil {
		t.Fatal(err)
	}
	env, r := startPipeline(t, cfg, db, log)
	t.Cleanup(func() { env.Close() })
	return cfg, env, r, log
}

// pipelineLog opens the bbolt log on db, closed when the test ends.
func pipelineLog(t *testing.T, db *bolt.DB) (*pipeline.BoltPubSub, error) {
	log, err := pipeline.NewBoltPubSub(db, nil)
	if err == nil {
		t.Cleanup(func() { log.Close() })
	}
	return log, err
}

func syncTables(t *testing.T, env *handlers.Env, r *pipeline.Router, tables ...string) *store.Run {
	t.Helper()
	runID, err := handlers.RequestSync(r.Publisher(), env.Runs, tables, pipeline.TriggerManual, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	return waitRun(t, env.Runs, runID)
}

func duck(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestIncrementalUpsertThroughPipeline(t *testing.T) {
	cfg, env, r, _ := pipelineFor(t, `  - {id: s.accounts, name: accounts, folder: s, description: Accounts, primary_key: "region, id",
     sync_strategy: incremental, incremental_window_days: 2, csv: {path: "accounts/*.csv"},
     columns: [{name: balance, type: "DECIMAL(10,2)"}]}
`, map[string]string{"accounts/day1.csv": "region,id,balance\neu,1,10.00\neu,2,20.00\nus,1,30.00\n"})
	if run := syncTables(t, env, r, "accounts"); run.Status != store.RunSucceeded {
		t.Fatalf("first sync: %+v", run.Tables[0])
	}
	// A new drop updates one row (composite key eu/2) and adds one; the old drop is not re-read.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(cfg.Paths.Home, "source/accounts/day1.csv"), old, old)
	testenv.WriteFile(t, filepath.Join(cfg.Paths.Home, "source/accounts/day2.csv"), "region,id,balance\neu,2,25.50\nus,2,40.00\n")
	run := syncTables(t, env, r, "accounts")
	if run.Status != store.RunSucceeded || run.Tables[0].Rows != 4 {
		t.Fatalf("second sync: %+v", run.Tables[0])
	}
	rows, err := duck(t).Query(`SELECT region, id, balance::VARCHAR FROM read_parquet(?) ORDER BY region, id`, filepath.Join(cfg.Paths.Parquet, "s/accounts.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var region, balance string
		var id int
		rows.Scan(&region, &id, &balance)
		got = append(got, region+"/"+string(rune('0'+id))+"="+balance)
	}
	want := []string{"eu/1=10.00", "eu/2=25.50", "us/1=30.00", "us/2=40.00"}
	if len(got) != len(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rows %v, want %v", got, want)
		}
	}
	state, err := store.LoadSyncState(filepath.Join(cfg.Paths.Metadata, "sync_state.json"))
	if err != nil || state.Tables["s.accounts"].Rows != 4 || state.Tables["s.accounts"].Strategy != "incremental" {
		t.Fatalf("sync_state: %+v %v", state, err)
	}
}

func TestPartitionedKeepsNullsAndMovesRows(t *testing.T) {
	cfg, env, r, _ := pipelineFor(t, `  - {id: s.events, name: events, folder: s, description: Events, primary_key: id,
     sync_strategy: partitioned, partition_by: day, partition_granularity: month, csv: {path: events.csv},
     columns: [{name: id, type: INTEGER}, {name: day, type: DATE}, {name: what, type: STRING}]}
`, map[string]string{"events.csv": "id,day,what\n1,2024-01-05,a\n2,2024-02-10,b\n3,,c\n"})
	if run := syncTables(t, env, r, "events"); run.Status != store.RunSucceeded {
		t.Fatalf("first sync: %+v", run.Tables[0])
	}
	dir := filepath.Join(cfg.Paths.Parquet, "s/events")
	for _, part := range []string{"2024_01", "2024_02", "__null__"} {
		if _, err := os.Stat(filepath.Join(dir, part+".parquet")); err != nil {
			t.Fatalf("partition %s: %v", part, err)
		}
	}
	// Row 1 moves to March; row 3 gets a date; row 2 is deleted at the source.
	testenv.WriteFile(t, filepath.Join(cfg.Paths.Home, "source/events.csv"), "id,day,what\n1,2024-03-01,a2\n3,2024-01-20,c2\n")
	if run := syncTables(t, env, r, "events"); run.Status != store.RunSucceeded {
		t.Fatalf("second sync: %+v", run.Tables[0])
	}
	var n, inJan, inMar int
	db := duck(t)
	glob := filepath.Join(dir, "*.parquet")
	db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE filename LIKE '%2024_01%' AND id = 3), count(*) FILTER (WHERE filename LIKE '%2024_03%' AND id = 1)
		FROM read_parquet(?, filename=true, union_by_name=true)`, glob).Scan(&n, &inJan, &inMar)
	if n != 2 || inJan != 1 || inMar != 1 {
		t.Fatalf("after the move: %d rows, row 3 in January %d, row 1 in March %d", n, inJan, inMar)
	}
	if _, err := os.Stat(filepath.Join(dir, "__null__.parquet")); !os.IsNotExist(err) {
		t.Fatalf("the emptied null partition must be gone: %v", err)
	}
}

func TestChunkedInitialLoadResumes(t *testing.T) {
	cfg, env, r, log := pipelineFor(t, `  - {id: s.visits, name: visits, folder: s, description: Visits, primary_key: id,
     sync_strategy: incremental, partition_by: at, max_history_days: 90, initial_load_chunk_days: 30,
     csv: {path: "visits/*.csv"}, columns: [{name: id, type: INTEGER}, {name: at, type: DATE}]}
`, map[string]string{
		"visits/a.csv": "id,at\n1,2024-05-01\n",
		"visits/b.csv": "id,at\n2,2024-04-01\n",
		"visits/c.csv": "id,at\n3,2024-03-01\n",
		"visits/d.csv": "id,at\n4,2023-01-01\n",
	})
	// File times place the drops in chunks 0, 1 and 2; d is older than the history limit.
	now := time.Now()
	for name, age := range map[string]int{"a": 5, "b": 40, "c": 70, "d": 200} {
		at := now.AddDate(0, 0, -age)
		os.Chtimes(filepath.Join(cfg.Paths.Home, "source/visits", name+".csv"), at, at)
	}
	// Chunk 1 cannot be read: its header disagrees with the others.
	bad := filepath.Join(cfg.Paths.Home, "source/visits/b.csv")
	testenv.WriteFile(t, bad, "ident,at\n2,2024-04-01\n")
	at := now.AddDate(0, 0, -40)
	os.Chtimes(bad, at, at)

	run := syncTables(t, env, r, "visits")
	if run.Status != store.RunFailed {
		t.Fatalf("chunk 1 must fail: %+v", run.Tables[0])
	}
	if load, ok, _ := env.Runs.InitialLoad("s.visits"); !ok || load.Next != 1 || load.Chunks != 3 {
		t.Fatalf("progress after the failure: %+v %v", load, ok)
	}
	testenv.WriteFile(t, bad, "id,at\n2,2024-04-01\n")
	os.Chtimes(bad, at, at)
	if _, err := pipeline.NewReplayer(log).Replay(nil, handlers.Requeue(env.Runs)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for run.Status != store.RunSucceeded && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		run, _ = env.Runs.Get(run.RunID)
	}
	if run.Status != store.RunSucceeded || run.Tables[0].Rows != 3 {
		t.Fatalf("after replay: %s %+v", run.Status, run.Tables[0])
	}
	// Chunk 0 was extracted once: the load continued, it did not restart.
	recs, _ := log.Read(pipeline.TopicTableExtracted, 0, 0)
	perChunk := map[string]int{}
	for _, rec := range recs {
		perChunk[rec.Metadata.Get(pipeline.MetaChunk)]++
	}
	if perChunk["0"] != 1 || perChunk["1"] != 1 || perChunk["2"] != 1 {
		t.Fatalf("extracts per chunk: %v", perChunk)
	}
	if _, ok, _ := env.Runs.InitialLoad("s.visits"); ok {
		t.Fatal("the finished load is still recorded")
	}
	var n int
	duck(t).QueryRow(`SELECT count(*) FROM read_parquet(?, union_by_name=true)`, filepath.Join(cfg.Paths.Parquet, "s/visits/*.parquet")).Scan(&n)
	if n != 3 {
		t.Fatalf("%d rows in Parquet, want 3 (the 200-day-old drop is outside the history)", n)
	}
}
