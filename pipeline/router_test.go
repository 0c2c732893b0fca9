package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

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

// A stage's consumer outlives the process: after a clean shutdown, the next start gets only
// the messages it has not acked (nats.go deletes a consumer it created itself when its
// subscription ends; the whole stream would come again). And a changed concurrency updates the
// existing consumer instead of failing the subscription.
func TestNATSConsumersSurviveARestartAndTakeANewConcurrency(t *testing.T) {
	srv := startNATS(t)
	run := func(concurrency int, path string) []string {
		t.Helper()
		b, err := pipeline.NewNATSBackend(srv.ClientURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		r, err := pipeline.NewRouter(b, pipeline.RouterConfig{Concurrency: concurrency})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var handled []string
		r.Handle("stage", pipeline.TopicTableConverted, func(msg *message.Message) ([]pipeline.Event, error) {
			var ev pipeline.TableConverted
			pipeline.Decode(msg, &ev)
			mu.Lock()
			handled = append(handled, ev.Path)
			mu.Unlock()
			return nil, nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		select {
		case <-r.Running():
		case err := <-done:
			t.Fatalf("concurrency %d: the router did not start: %v", concurrency, err)
		}
		ev := pipeline.TableConverted{Path: path}
		pipeline.Stamp(&ev.Header, "run", "t")
		if err := pipeline.Publish(r.Publisher(), ev); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			n := len(handled)
			mu.Unlock()
			if n > 0 || time.Now().After(deadline) {
				break
			}
		}
		time.Sleep(300 * time.Millisecond) // a redelivered message would arrive meanwhile
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return handled
	}
	if got := run(2, "first"); len(got) != 1 || got[0] != "first" {
		t.Fatalf("first start handled %v", got)
	}
	if got := run(5, "second"); len(got) != 1 || got[0] != "second" {
		t.Fatalf("after a clean restart the stage handled %v, want only the new message", got)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := nc.JetStream()
	n := 0
	for name := range js.ConsumerNames("ANALYST") {
		info, err := js.ConsumerInfo("ANALYST", name)
		if err != nil {
			t.Fatal(err)
		}
		if n++; info.Config.MaxAckPending != 5 {
			t.Errorf("consumer %s: MaxAckPending %d, want the new concurrency 5", name, info.Config.MaxAckPending)
		}
	}
	if n != 1 {
		t.Fatalf("%d consumers after the shutdowns, want the stage's one", n)
	}
}

// When a stage reports a message failed for good, its poison record is already in the log, so
// the Retry of a run shown failed finds it.
func TestFailureIsReportedAfterItsPoisonRecord(t *testing.T) {
	log, _ := openLog(t, "")
	replayer := pipeline.NewReplayer(log)
	listed := make(chan int, 1)
	r, err := pipeline.NewRouter(log, pipeline.RouterConfig{MaxRetries: 1, InitialInterval: time.Millisecond,
		OnStage: func(ev pipeline.StageEvent) {
			if ev.Done && ev.Err != nil {
				pending, _ := replayer.List(true)
				listed <- len(pending)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.Handle("stage", pipeline.TopicTableConverted, func(*message.Message) ([]pipeline.Event, error) {
		return nil, errors.New("broken")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-r.Running()
	ev := pipeline.TableConverted{Path: "t/x.parquet"}
	pipeline.Stamp(&ev.Header, "run", "t")
	if err := pipeline.Publish(r.Publisher(), ev); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-listed:
		if n != 1 {
			t.Fatalf("when the failure was reported, %d poison records were listed, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no failure reported")
	}
}
