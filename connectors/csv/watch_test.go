package csv

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/internal/testenv"
)

const settle = 300 * time.Millisecond

// calls collects onChange calls with their times.
type calls struct {
	mu    sync.Mutex
	ids   []string
	times []time.Time
}

func (c *calls) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
	c.times = append(c.times, time.Now())
}

func (c *calls) get() ([]string, []time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...), append([]time.Time(nil), c.times...)
}

// startWatch runs Watch until the test ends and gives it a moment to set up its watches.
func startWatch(t *testing.T, base string, tables []config.Table) *calls {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &calls{}
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, base, tables, settle, c.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	time.Sleep(100 * time.Millisecond)
	return c
}

// waitQuiet waits until nothing could still be pending.
func waitQuiet() { time.Sleep(3 * settle) }

func TestWatchChunkedWriteFiresOnce(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	c := startWatch(t, base, []config.Table{{ID: "orders"}})
	f, err := os.Create(filepath.Join(base, "orders.csv"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("id,amount\n")
	for i := 0; i < 5; i++ {
		time.Sleep(settle / 3)
		f.WriteString("1,2.50\n")
	}
	f.Close()
	lastWrite := time.Now()
	waitQuiet()
	ids, times := c.get()
	if len(ids) != 1 || ids[0] != "orders" {
		t.Fatalf("calls: %v", ids)
	}
	if times[0].Before(lastWrite.Add(settle - 20*time.Millisecond)) {
		t.Fatalf("fired %v after the last write; settle is %v", times[0].Sub(lastWrite), settle)
	}
}

func TestWatchTwoTablesOneCallEach(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	os.Mkdir(filepath.Join(base, "drops"), 0o755)
	c := startWatch(t, base, []config.Table{
		{ID: "customers"},
		{ID: "events", CSV: &config.CSVTable{Path: "drops"}},
		{ID: "untouched"},
	})
	testenv.WriteFile(t, filepath.Join(base, "customers.csv"), "id\n1\n")
	testenv.WriteFile(t, filepath.Join(base, "drops/2025-01-01.csv"), "id\n1\n")
	testenv.WriteFile(t, filepath.Join(base, "drops/2025-01-02.csv"), "id\n2\n")
	testenv.WriteFile(t, filepath.Join(base, "customers.csv"), "id\n1\n2\n")
	waitQuiet()
	ids, _ := c.get()
	sort.Strings(ids)
	if len(ids) != 2 || ids[0] != "customers" || ids[1] != "events" {
		t.Fatalf("calls: %v", ids)
	}
}

func TestWatchRenameIntoPlace(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	c := startWatch(t, base, []config.Table{{ID: "orders"}})
	tmp := filepath.Join(base, ".orders.csv.tmp-123")
	testenv.WriteFile(t, tmp, "id\n1\n")
	testenv.WriteFile(t, filepath.Join(base, "orders.csv.tmp"), "id\n1\n")
	testenv.WriteFile(t, filepath.Join(base, "orders.csv~"), "id\n1\n")
	waitQuiet()
	if ids, _ := c.get(); len(ids) != 0 {
		t.Fatalf("temp files fired: %v", ids)
	}
	if err := os.Rename(tmp, filepath.Join(base, "orders.csv")); err != nil {
		t.Fatal(err)
	}
	waitQuiet()
	if ids, _ := c.get(); len(ids) != 1 || ids[0] != "orders" {
		t.Fatalf("rename: %v", ids)
	}
	// A file moved in from another folder replaces it and fires again.
	outside := filepath.Join(t.TempDir(), "x.csv")
	testenv.WriteFile(t, outside, "id\n2\n")
	if err := os.Rename(outside, filepath.Join(base, "orders.csv")); err != nil {
		t.Fatal(err)
	}
	waitQuiet()
	if ids, _ := c.get(); len(ids) != 2 || ids[1] != "orders" {
		t.Fatalf("move in: %v", ids)
	}
}

func TestWatchNewFolderAndGlob(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	c := startWatch(t, base, []config.Table{
		{ID: "reviews", CSV: &config.CSVTable{Path: "reviews/reviews_*.csv"}},
		{ID: "other", CSV: &config.CSVTable{Path: "reviews/other_*.csv"}},
	})
	// The folder appears after Watch started; the file inside must be seen.
	testenv.WriteFile(t, filepath.Join(base, "reviews/reviews_2025_01.csv"), "id\n1\n")
	waitQuiet()
	if ids, _ := c.get(); len(ids) != 1 || ids[0] != "reviews" {
		t.Fatalf("new folder: %v", ids)
	}
	testenv.WriteFile(t, filepath.Join(base, "reviews/reviews_2025_02.csv"), "id\n2\n")
	testenv.WriteFile(t, filepath.Join(base, "reviews/notes.csv"), "x\n")
	waitQuiet()
	if ids, _ := c.get(); len(ids) != 2 || ids[1] != "reviews" {
		t.Fatalf("second drop: %v", ids)
	}
	os.Remove(filepath.Join(base, "reviews/reviews_2025_01.csv"))
	waitQuiet()
	if ids, _ := c.get(); len(ids) != 3 || ids[2] != "reviews" {
		t.Fatalf("removal: %v", ids)
	}
}

func TestWatchMissingBase(t *testing.T) {
	t.Parallel()
	err := Watch(context.Background(), filepath.Join(t.TempDir(), "nope"), nil, settle, func(string) {})
	if err == nil {
		t.Fatal("no error for a missing base folder")
	}
}
