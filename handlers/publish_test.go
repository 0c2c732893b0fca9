package handlers_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// The publish stage refreshes the manifest and says in its event which version holds the table.
func TestPublishUpdatesManifest(t *testing.T) {
	cfg := instance(t)
	db := testenv.OpenStore(t, cfg.Paths.Store)
	log, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	env, r := startPipeline(t, cfg, db, log)

	published := func(runID string) pipeline.TablePublished {
		t.Helper()
		recs, err := log.Read(pipeline.TopicTablePublished, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if rec.Metadata.Get(pipeline.MetaRunID) == runID {
				var ev pipeline.TablePublished
				if err := json.Unmarshal(rec.Payload, &ev); err != nil {
					t.Fatal(err)
				}
				return ev
			}
		}
		t.Fatalf("no table.published event for run %s", runID)
		return pipeline.TablePublished{}
	}
	sync := func() pipeline.TablePublished {
		runID, err := handlers.RequestSync(r.Publisher(), env.Runs, []string{"orders"}, pipeline.TriggerManual, "test", false)
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, env.Runs, runID)
		return published(runID)
	}

	ev := sync()
	m, err := store.LoadManifest(store.ManifestPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.Lookup("parquet/shop/orders.parquet")
	b, _ := os.ReadFile(filepath.Join(cfg.Paths.Parquet, "shop", "orders.parquet"))
	sum := sha256.Sum256(b)
	if !ok || e.SHA256 != hex.EncodeToString(sum[:]) || e.Rows != 3 || e.Table != "orders" {
		t.Fatalf("manifest entry %+v", e)
	}
	if _, ok := m.Lookup("metadata/schema.yml"); !ok {
		t.Error("schema.yml not in the manifest")
	}
	if ev.ManifestVersion != m.Version || ev.Files != 1 || ev.Rows != 3 {
		t.Errorf("event %+v, manifest version %d", ev, m.Version)
	}

	// A changed source makes a new version holding the new file.
	testenv.WriteFile(t, filepath.Join(cfg.Paths.Home, "source/orders.csv"), "id,amount,placed\n1,10.50,2024-01-02\n2,20.25,2024-01-03\n3,,2024-02-01\n4,1,2024-03-01\n")
	ev2 := sync()
	m2, _ := store.LoadManifest(store.ManifestPath(cfg))
	e2, _ := m2.Lookup("parquet/shop/orders.parquet")
	if ev2.ManifestVersion != m2.Version || m2.Version <= m.Version || e2.Rows != 4 || e2.SHA256 == e.SHA256 {
		t.Errorf("after a change: event %+v, manifest v%d entry %+v", ev2, m2.Version, e2)
	}
}
