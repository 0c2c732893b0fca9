package pipeline_test

import (
	"os"
	"path/filepath"
	"testing"

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
