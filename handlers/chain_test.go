package handlers_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	_ "github.com/ai-data-analyst/analyst/connectors/csv"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/pipeline/natsembed"
	"github.com/ai-data-analyst/analyst/store"
)

// instance writes a small CSV-sourced instance with two tables and returns its config.
func instance(t *testing.T) *config.Config {
	t.Helper()
	return testenv.Instance(t, map[string]string{
		"config/instance.yaml": `instance: {name: Chain test}
data_source:
  type: csv
  csv: {path: source}
`,
		"docs/data_description.md": "# Tables\n\n```yaml\n" + `tables:
  - id: shop.orders
    name: orders
    folder: shop
    description: Orders
    primary_key: id
    sync_strategy: full_refresh
    csv: {path: orders.csv}
  - id: shop.refunds
    name: refunds
    folder: shop
    description: Refunds; its file appears late
    primary_key: id
    sync_strategy: full_refresh
    csv: {path: refunds.csv}
` + "```\n",
		"source/orders.csv": "id,amount,placed\n1,10.50,2024-01-02\n2,20.25,2024-01-03\n3,,2024-02-01\n",
	})
}

// startPipeline runs the five stages on backend and returns the env and the router.
func startPipeline(t *testing.T, cfg *config.Config, db *bolt.DB, backend pipeline.Backend) (*handlers.Env, *pipeline.Router) {
	t.Helper()
	runs, err := store.NewRuns(db)
	if err != nil {
		t.Fatal(err)
	}
	env := handlers.NewEnv(cfg, runs, nil)
	r, err := pipeline.NewRouter(backend, pipeline.RouterConfig{MaxRetries: 1, InitialInterval: 10 * time.Millisecond, OnStage: env.TrackStage})
	if err != nil {
		t.Fatal(err)
	}
	handlers.Register(r, env)
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	<-r.Running()
	t.Cleanup(func() { cancel(); r.Close() })
	return env, r
}

func waitRun(t *testing.T, runs *store.Runs, runID string) *store.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		run, err := runs.Get(runID)
		if err == nil && (run.Status == store.RunSucceeded || run.Status == store.RunFailed) {
			return run
		}
		time.Sleep(20 * time.Millisecond)
	}
	run, _ := runs.Get(runID)
	t.Fatalf("run %s did not finish: %+v", runID, run)
	return nil
}

func TestChainOnBolt(t *testing.T) {
	cfg := instance(t)
	db := testenv.OpenStore(t, cfg.Paths.Store)
	log, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	env, r := startPipeline(t, cfg, db, log)

	runID, err := handlers.RequestSync(r.Publisher(), env.Runs, []string{"orders", "refunds"}, pipeline.TriggerManual, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	run := waitRun(t, env.Runs, runID)
	if run.Status != store.RunFailed {
		t.Fatalf("refunds has no file yet, so the run must fail; got %s", run.Status)
	}
	tables := map[string]*store.RunTable{}
	for _, rt := range run.Tables {
		tables[rt.Name] = rt
	}
	if tables["orders"].Status != store.RunSucceeded || tables["refunds"].Status != store.RunFailed || tables["refunds"].Error == "" {
		t.Fatalf("table statuses: orders %+v, refunds %+v", tables["orders"], tables["refunds"])
	}
	for _, stage := range []string{"ingest", "transform", "profile", "publish", "notify"} {
		if s := tables["orders"].Stage(stage); !s.Done {
			t.Errorf("orders stage %s not done: %+v", stage, s)
		}
	}
	assertRows(t, filepath.Join(cfg.Paths.Parquet, "shop/orders.parquet"), 3)

	// Every stage left its event in the log, carrying the run id and table.
	for _, topic := range []string{pipeline.TopicSyncRequested, pipeline.TopicTableExtracted, pipeline.TopicTableConverted,
		pipeline.TopicTableProfiled, pipeline.TopicTablePublished, pipeline.TopicNotifyDelivered} {
		recs, err := log.Read(topic, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, rec := range recs {
			if rec.Metadata.Get(pipeline.MetaRunID) == runID && rec.Metadata.Get(pipeline.MetaTable) == "orders" {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s event for run %s table orders", topic, runID)
		}
	}

	replayFailedRefunds(t, cfg, env, pipeline.NewReplayer(log), runID)
}

// replayFailedRefunds: the run failed on refunds, whose file was missing; the failure is on the
// ingest handler's poison topic. After the file appears, a replay finishes the same run, and a
// second replay publishes nothing.
func replayFailedRefunds(t *testing.T, cfg *config.Config, env *handlers.Env, replayer *pipeline.Replayer, runID string) {
	t.Helper()
	pending, err := replayer.List(true)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Table != "refunds" || pending[0].Handler != "ingest" || pending[0].RunID != runID || pending[0].Attempts != 2 {
		t.Fatalf("poison messages: %+v", pending)
	}
	testenv.WriteFile(t, filepath.Join(cfg.Paths.Home, "source/refunds.csv"), "id,order_id\n1,2\n")
	replayed, err := replayer.Replay(func(p pipeline.Poisoned) bool { return p.RunID == runID }, handlers.Requeue(env.Runs))
	if err != nil || len(replayed) != 1 {
		t.Fatalf("replay: %v %v", replayed, err)
	}
	if again, _ := replayer.Replay(nil, nil); len(again) != 0 {
		t.Fatalf("a poison message was replayed twice: %+v", again)
	}
	if run := waitRun(t, env.Runs, runID); run.Status != store.RunSucceeded {
		t.Fatalf("after replay the run is %s: %+v", run.Status, run.Tables)
	}
	assertRows(t, filepath.Join(cfg.Paths.Parquet, "shop/refunds.parquet"), 1)
}

// The same chain on JetStream, with the failure listed and replayed from the stream.
func TestChainOnNATS(t *testing.T) {
	cfg := instance(t)
	srv, err := natsembed.Start(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	backend, err := pipeline.NewNATSBackend(srv.ClientURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	db := testenv.OpenStore(t, cfg.Paths.Store)
	env, r := startPipeline(t, cfg, db, backend)

	delivered, err := backend.SubscriberWith("test-observer", pipeline.SubscriberOptions{}).Subscribe(context.Background(), pipeline.TopicNotifyDelivered)
	if err != nil {
		t.Fatal(err)
	}
	runID, err := handlers.RequestSync(r.Publisher(), env.Runs, []string{"orders", "refunds"}, pipeline.TriggerManual, "test", false)
	if err != nil {
		t.Fatal(err)
	}
	if run := waitRun(t, env.Runs, runID); run.Status != store.RunFailed {
		t.Fatalf("refunds has no file yet, so the run on NATS must fail; got %s", run.Status)
	}
	replayFailedRefunds(t, cfg, env, pipeline.NewReplayer(backend.PoisonLog()), runID)
	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for len(seen) < 2 {
		select {
		case msg := <-delivered:
			if msg.Metadata.Get(pipeline.MetaRunID) == runID {
				seen[msg.Metadata.Get(pipeline.MetaTable)] = true
			}
			msg.Ack()
		case <-timeout:
			t.Fatalf("notify.delivered seen for %v only", seen)
		}
	}
	assertRows(t, filepath.Join(cfg.Paths.Parquet, "shop/orders.parquet"), 3)
}

// assertRows reads a Parquet file with DuckDB, the independent reader.
func assertRows(t *testing.T, path string, want int) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM read_parquet(?)", path).Scan(&n); err != nil {
		t.Fatalf("DuckDB cannot read %s: %v", path, err)
	}
	if n != want {
		t.Fatalf("%s has %d rows, want %d", path, n, want)
	}
}
