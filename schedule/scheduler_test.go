package schedule

import (
	"bytes"
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock shared by the test and the scheduler.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// syncBuffer is a log sink safe for the scheduler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func mustParse(t *testing.T, spec string) Schedule {
	t.Helper()
	s, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSchedulerFiresWhenDueAndReportsNext(t *testing.T) {
	clock := &fakeClock{t: mustTime(t, "2025-03-10T05:30:00Z")}
	s := New(slog.New(slog.DiscardHandler), clock.Now)
	runs := make(chan string, 10)
	s.Add("orders", mustParse(t, "every 6h"), func(context.Context) { runs <- "orders" })
	s.Add("daily", mustParse(t, "daily 07:00"), func(context.Context) { runs <- "daily" })

	if got, want := s.Next("orders"), mustTime(t, "2025-03-10T06:00:00Z"); !got.Equal(want) {
		t.Fatalf("Next(orders) = %s, want %s", got, want)
	}
	if !s.Next("unknown").IsZero() {
		t.Fatal("Next of an unknown job is not zero")
	}
	ctx := context.Background()

	// Not due yet: nothing runs, and the earliest next run is returned.
	if next := s.runDue(ctx, clock.Now()); !next.Equal(mustTime(t, "2025-03-10T06:00:00Z")) {
		t.Fatalf("earliest next = %s", next)
	}
	s.wg.Wait()
	if len(runs) != 0 {
		t.Fatalf("%d runs before due", len(runs))
	}

	// 06:00 exactly: orders is due, daily is not.
	clock.Set(mustTime(t, "2025-03-10T06:00:00Z"))
	s.runDue(ctx, clock.Now())
	s.wg.Wait()
	if got := drain(runs); got != "orders" {
		t.Fatalf("runs at 06:00 = %q", got)
	}
	if got, want := s.Next("orders"), mustTime(t, "2025-03-10T12:00:00Z"); !got.Equal(want) {
		t.Fatalf("Next(orders) after run = %s, want %s", got, want)
	}

	// The process slept through several periods: each job runs once, not once per missed period.
	clock.Set(mustTime(t, "2025-03-11T09:10:00Z"))
	s.runDue(ctx, clock.Now())
	s.wg.Wait()
	if got := drain(runs); got != "daily,orders" {
		t.Fatalf("runs after a long pause = %q", got)
	}
	if got, want := s.Next("daily"), mustTime(t, "2025-03-12T07:00:00Z"); !got.Equal(want) {
		t.Fatalf("Next(daily) = %s, want %s", got, want)
	}
}

func TestSchedulerSkipsOverlappingRun(t *testing.T) {
	clock := &fakeClock{t: mustTime(t, "2025-03-10T00:00:00Z")}
	logs := &syncBuffer{}
	s := New(slog.New(slog.NewTextHandler(logs, nil)), clock.Now)
	release := make(chan struct{})
	var started, active, maxActive atomic.Int32
	s.Add("slow", mustParse(t, "every 1m"), func(context.Context) {
		started.Add(1)
		n := active.Add(1)
		if n > maxActive.Load() {
			maxActive.Store(n)
		}
		<-release
		active.Add(-1)
	})
	ctx := context.Background()
	for i := 1; i <= 3; i++ { // due three times while the first run blocks
		clock.Set(clock.Now().Add(time.Minute))
		s.runDue(ctx, clock.Now())
	}
	close(release)
	s.wg.Wait()
	if started.Load() != 1 || maxActive.Load() != 1 {
		t.Fatalf("started %d runs, at most %d at once; want 1 and 1", started.Load(), maxActive.Load())
	}
	if n := strings.Count(logs.String(), "still running"); n != 2 {
		t.Fatalf("logged %d skips, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "job=slow") {
		t.Fatalf("skip log does not name the job:\n%s", logs)
	}

	// Once finished, the next due time starts it again.
	clock.Set(clock.Now().Add(time.Minute))
	s.runDue(ctx, clock.Now())
	s.wg.Wait()
	if started.Load() != 2 {
		t.Fatalf("job did not run again after finishing (started %d)", started.Load())
	}
}

func TestSchedulerSurvivesPanic(t *testing.T) {
	clock := &fakeClock{t: mustTime(t, "2025-03-10T00:00:00Z")}
	logs := &syncBuffer{}
	s := New(slog.New(slog.NewTextHandler(logs, nil)), clock.Now)
	var runs atomic.Int32
	s.Add("bad", mustParse(t, "every 1m"), func(context.Context) { runs.Add(1); panic("boom") })
	for i := 0; i < 2; i++ {
		clock.Set(clock.Now().Add(time.Minute))
		s.runDue(context.Background(), clock.Now())
		s.wg.Wait()
	}
	if runs.Load() != 2 {
		t.Fatalf("runs = %d, want 2 (a panic must not leave the job marked running)", runs.Load())
	}
	if !strings.Contains(logs.String(), "panic=boom") {
		t.Fatalf("panic not logged:\n%s", logs)
	}
}

// tick is a schedule firing every d of real time, shorter than Parse allows, for Run tests.
type tick time.Duration

func (d tick) Next(after time.Time) time.Time { return after.Add(time.Duration(d)) }
func (d tick) String() string                 { return "tick" }

func TestRunRealClock(t *testing.T) {
	s := New(slog.New(slog.DiscardHandler), nil)
	ctx, cancel := context.WithCancel(context.Background())
	fired := make(chan struct{}, 100)
	var inFlight, overlap atomic.Int32
	s.Add("fast", tick(5*time.Millisecond), func(ctx context.Context) {
		if inFlight.Add(1) > 1 {
			overlap.Add(1)
		}
		defer inFlight.Add(-1)
		fired <- struct{}{}
		select { // outlives several periods, and sees the shutdown
		case <-ctx.Done():
		case <-time.After(12 * time.Millisecond):
		}
	})
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	for i := 0; i < 3; i++ {
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatal("job did not fire")
		}
	}
	// A job added while Run sleeps is picked up without waiting for the old timer.
	added := make(chan struct{}, 1)
	s.Add("late", tick(time.Millisecond), func(context.Context) {
		select {
		case added <- struct{}{}:
		default:
		}
	})
	select {
	case <-added:
	case <-time.After(5 * time.Second):
		t.Fatal("job added during Run did not fire")
	}
	<-fired // the next run is in flight or about to be
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if inFlight.Load() != 0 {
		t.Fatal("Run returned while a job was still running")
	}
	if overlap.Load() != 0 {
		t.Fatalf("%d overlapping runs", overlap.Load())
	}
}

func drain(ch chan string) string {
	var names []string
	for {
		select {
		case n := <-ch:
			names = append(names, n)
		default:
			sort.Strings(names) // jobs start in map order
			return strings.Join(names, ",")
		}
	}
}
