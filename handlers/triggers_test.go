package handlers_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

func TestScheduledSyncNotStartedTwice(t *testing.T) {
	cfg := instance(t)
	db := testenv.OpenStore(t, cfg.Paths.Store)
	log, _ := pipeline.NewBoltPubSub(db, nil)
	defer log.Close()
	runs, _ := store.NewRuns(db)
	// No router runs, so a requested sync stays queued: the table is busy.
	tr := &handlers.Triggers{Env: handlers.NewEnv(cfg, runs, nil), Pub: log.Publisher()}
	first, err := tr.SyncIfIdle("orders", pipeline.TriggerSchedule)
	if err != nil || first == "" {
		t.Fatalf("first scheduled sync: %q %v", first, err)
	}
	second, err := tr.SyncIfIdle("orders", pipeline.TriggerSchedule)
	if err != nil || second != "" {
		t.Fatalf("a second sync started while the first is queued: %q %v", second, err)
	}
	if other, _ := tr.SyncIfIdle("refunds", pipeline.TriggerSchedule); other == "" {
		t.Fatal("another table must not be blocked")
	}
	recs, _ := log.Read(pipeline.TopicSyncRequested, 0, 0)
	if len(recs) != 2 {
		t.Fatalf("%d sync requests in the log, want 2", len(recs))
	}
}

func TestWatchedFileSyncsItsTable(t *testing.T) {
	home := t.TempDir()
	testenv.WriteFile(t, filepath.Join(home, "config/instance.yaml"), "instance: {name: Watch}\ndata_source:\n  type: csv\n  csv: {path: drops, watch: true, settle: 200ms}\n")
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "```yaml\ntables:\n"+
		"  - {id: w.sales, name: sales, folder: w, description: S, primary_key: id, sync_strategy: full_refresh, csv: {path: \"sales/*.csv\"}}\n```\n")
	testenv.WriteFile(t, filepath.Join(home, "drops/sales/1.csv"), "id,amount\n1,5\n")
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.OpenStore(t, cfg.Paths.Store)
	log, _ := pipeline.NewBoltPubSub(db, nil)
	t.Cleanup(func() { log.Close() })
	env, r := startPipeline(t, cfg, db, log)
	tr := &handlers.Triggers{Env: env, Pub: r.Publisher()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.WatchSources(ctx)
	time.Sleep(300 * time.Millisecond) // the watch is set up

	testenv.WriteFile(t, filepath.Join(home, "drops/sales/2.csv"), "id,amount\n2,7\n3,9\n")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		list, _ := env.Runs.List(0)
		if len(list) == 1 && list[0].Status == store.RunSucceeded {
			if list[0].Trigger != pipeline.TriggerWatch {
				t.Fatalf("trigger %q", list[0].Trigger)
			}
			assertRows(t, filepath.Join(cfg.Paths.Parquet, "w/sales.parquet"), 3)
			time.Sleep(500 * time.Millisecond)
			if list, _ := env.Runs.List(0); len(list) != 1 {
				t.Fatalf("one new file must start one run, got %d", len(list))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no run after a file was dropped")
}
