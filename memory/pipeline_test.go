package memory_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/memory"
	"github.com/ai-data-analyst/analyst/pipeline"
)

// TestCollectionRunsAsPipelineEvents: a request goes through the real router on the bbolt log
// to the memory stage; the run's report and every item change are events in the log.
func TestCollectionRunsAsPipelineEvents(t *testing.T) {
	e := newEnv(t, memory.Options{})
	log, err := pipeline.NewBoltPubSub(e.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	r, err := pipeline.NewRouter(log, pipeline.RouterConfig{MaxRetries: 1, InitialInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	handlers.RegisterMemory(r, e.svc)
	e.svc.SetPublisher(r.Publisher())
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	<-r.Running()
	t.Cleanup(func() { cancel(); r.Close() })

	e.analyst("ann@acme.com", "- Fiscal year: starts in April\n- Churn: no order for 90 days\n")
	runID, err := e.svc.RequestCollect(pipeline.TriggerManual, "boss@acme.com", true)
	if err != nil {
		t.Fatal(err)
	}
	var done pipeline.MemoryCollected
	deadline := time.Now().Add(10 * time.Second)
	for done.RunID == "" && time.Now().Before(deadline) {
		recs, err := log.Read(pipeline.TopicMemoryCollected, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			json.Unmarshal(rec.Payload, &done)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if done.RunID != runID || done.Created != 2 || done.Batches != 1 {
		t.Fatalf("collection report %+v (run %s)", done, runID)
	}
	recs, err := log.Read(pipeline.TopicMemoryItemChanged, 0, 0)
	if err != nil || len(recs) != 2 {
		t.Fatalf("audit events in the log: %d %v", len(recs), err)
	}
	var ev pipeline.MemoryItemChanged
	json.Unmarshal(recs[0].Payload, &ev)
	if ev.Action != "created" || ev.By != "collector" || ev.RunID != runID || ev.ItemID == "" {
		t.Fatalf("audit event %+v", ev)
	}
}
