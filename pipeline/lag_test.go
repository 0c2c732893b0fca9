package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
)

// The lag a stage shows on /health is what it has not acknowledged: everything before its
// consumer exists, the messages it holds while handling them, none once they are done. The same
// on the bbolt log and on JetStream, where it is read from the consumer across all processes.
func TestLagCountsWhatAStageHasNotAcknowledged(t *testing.T) {
	log, _ := openLog(t, "")
	nb, err := pipeline.NewNATSBackend(startNATS(t).ClientURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	for name, b := range map[string]interface {
		pipeline.Backend
		pipeline.Lagger
	}{"bolt": log, "nats": nb} {
		t.Run(name, func(t *testing.T) {
			lag := func() int {
				t.Helper()
				n, err := b.Lag("stage", pipeline.TopicTableConverted, 100)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			for range 3 {
				ev := pipeline.TableConverted{Path: "t/x.parquet"}
				pipeline.Stamp(&ev.Header, "run", "t")
				if err := pipeline.Publish(b.Publisher(), ev); err != nil {
					t.Fatal(err)
				}
			}
			if n := lag(); n != 3 {
				t.Fatalf("lag before the stage ever ran = %d, want 3", n)
			}
			if n, _ := b.Lag("stage", pipeline.TopicTableConverted, 2); n != 2 {
				t.Fatalf("lag counted up to 2 = %d", n)
			}
			r, err := pipeline.NewRouter(b, pipeline.RouterConfig{Concurrency: 1})
			if err != nil {
				t.Fatal(err)
			}
			started, release := make(chan struct{}, 3), make(chan struct{})
			r.Handle("stage", pipeline.TopicTableConverted, func(*message.Message) ([]pipeline.Event, error) {
				started <- struct{}{}
				<-release
				return nil, nil
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); r.Run(ctx) }()
			defer func() { cancel(); <-done }()
			<-started
			if n := lag(); n != 3 {
				t.Fatalf("lag while the first message is being handled = %d, want 3", n)
			}
			close(release)
			for deadline := time.Now().Add(10 * time.Second); lag() != 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("lag after every message was handled = %d, want 0", lag())
				}
			}
		})
	}
}
