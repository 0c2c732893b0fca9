package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
)

// On JetStream a process handles several messages of a stage at once, as on the bbolt log, and
// never two of one key (here a table) at the same time: two rewrites of one file must not race.
func TestNATSRouterRunsTablesConcurrentlyAndEachTableInTurn(t *testing.T) {
	srv := startNATS(t)
	b, err := pipeline.NewNATSBackend(srv.ClientURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r, err := pipeline.NewRouter(b, pipeline.RouterConfig{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	const tables, perTable = 4, 5
	var (
		mu                sync.Mutex
		running, maxAll   int
		perKey, maxPerKey = map[string]int{}, map[string]int{}
		handled           = map[string]int{}
		all               = make(chan struct{})
	)
	r.Handle("stage", pipeline.TopicTableConverted, func(msg *message.Message) ([]pipeline.Event, error) {
		table := msg.Metadata.Get(pipeline.MetaTable)
		mu.Lock()
		running++
		perKey[table]++
		maxAll, maxPerKey[table] = max(maxAll, running), max(maxPerKey[table], perKey[table])
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		running--
		perKey[table]--
		if handled[msg.UUID]++; len(handled) == tables*perTable {
			close(all)
		}
		return nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-r.Running()
	for i := range perTable {
		for k := range tables {
			ev := pipeline.TableConverted{Path: fmt.Sprintf("t%d/%d.parquet", k, i)}
			pipeline.Stamp(&ev.Header, "run", fmt.Sprintf("t%d", k))
			msg, err := pipeline.NewMessage(ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Publisher().Publish(pipeline.TopicTableConverted, msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatalf("handled %d of %d messages", len(handled), tables*perTable)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxAll < 2 {
		t.Errorf("at most %d message at once: the stage's concurrency of 4 is not used", maxAll)
	}
	for table, n := range maxPerKey {
		if n > 1 {
			t.Errorf("table %s: %d messages handled at once", table, n)
		}
	}
}
