package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// openLog opens a bbolt file in a temp dir with a Pub/Sub on it, closed when the test ends.
func openLog(t testing.TB, path string) (*pipeline.BoltPubSub, *bolt.DB) {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "analyst.db")
	}
	db, err := store.OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ps.Close()
		store.CloseDB(db)
	})
	return ps, db
}

// TestUniversalPubSub runs Watermill's own test suite against the bbolt Pub/Sub. All
// publishers and subscribers share one file, as they do in a running server.
func TestUniversalPubSub(t *testing.T) {
	ps, _ := openLog(t, "")
	features := tests.Features{
		ConsumerGroups:                      true,
		ExactlyOnceDelivery:                 false, // a nacked or unacked message is delivered again
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: false, // order holds across subscribers of a group too
		Persistent:                          true,
	}
	constructor := func(t *testing.T) (message.Publisher, message.Subscriber) {
		return ps.Publisher(), ps.Subscriber("default")
	}
	groupConstructor := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		return ps.Publisher(), ps.Subscriber(group)
	}
	t.Run("suite", func(t *testing.T) {
		tests.TestPubSub(t, features, constructor, groupConstructor)
	})
	t.Run("stress", func(t *testing.T) {
		// Watermill runs the whole suite STRESS_TEST_COUNT times in parallel (default 10);
		// two parallel rounds keep CI short and still race every path against another.
		if os.Getenv("STRESS_TEST_COUNT") == "" {
			os.Setenv("STRESS_TEST_COUNT", "2")
		}
		tests.TestPubSubStressTest(t, features, constructor, groupConstructor)
	})
}

// An ack that lands just before the subscriber goes away still counts.
func TestAckThenCancelIsNotRedelivered(t *testing.T) {
	for round := range 10 {
		ps, _ := openLog(t, "")
		for i := range 10 {
			m := message.NewMessage(fmt.Sprint(i), []byte{byte(i)})
			m.Metadata.Set("table", fmt.Sprint(i))
			if err := ps.Publish("table.extracted", m); err != nil {
				t.Fatal(err)
			}
		}
		sub := ps.SubscriberWith("g", pipeline.SubscriberOptions{Concurrency: 16})
		ctx, cancel := context.WithCancel(context.Background())
		msgs, err := sub.Subscribe(ctx, "table.extracted")
		if err != nil {
			t.Fatal(err)
		}
		for range 6 {
			(<-msgs).Ack()
		}
		cancel()
		sub.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			off, _ := ps.Offset("g", "table.extracted")
			if off == 6 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: offset %d after 6 acks, want 6", round, off)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Backlog counts what this process's groups have not durably acked, and reaches 0 once they
// have; a command waits for it before closing the store.
func TestBacklogCountsUnackedMessages(t *testing.T) {
	ps, _ := openLog(t, "")
	for i := range 5 {
		if err := ps.Publish("work", message.NewMessage(fmt.Sprint(i), []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := ps.Backlog(); err != nil || n != 0 {
		t.Fatalf("backlog with no group subscribed = %d, %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := ps.Subscriber("g").Subscribe(ctx, "work")
	if err != nil {
		t.Fatal(err)
	}
	first := <-msgs // held, not acked yet
	if n, _ := ps.Backlog(); n != 5 {
		t.Fatalf("backlog with a message in flight = %d, want 5", n)
	}
	first.Ack()
	for range 4 {
		(<-msgs).Ack()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := ps.Backlog()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog after every ack = %d", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
