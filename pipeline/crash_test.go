package pipeline_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// The crash test runs its own test binary as a child that works on a bbolt log and reports on
// stdout, one line each, what the log confirmed to it; the parent kills it with SIGKILL and
// checks the reopened file against those lines.
const (
	envCrashChild = "ANALYST_CRASH_CHILD" // "publish" or "consume": run as that child
	envCrashDB    = "ANALYST_CRASH_DB"
	envCrashSeed  = "ANALYST_CRASH_SEED" // reproduce a run's kill points
	// envCrashKillMax raises the most confirmed publishes before the kill (default
	// crashKillMax); consuming them back is what takes the time.
	envCrashKillMax = "ANALYST_CRASH_KILL_MAX"

	crashTopic      = "crash.events"
	crashMessages   = 100_000 // the publishing child's whole stream; it is killed long before the end
	crashPublishers = 64
	crashKillMin    = 2_000
	crashKillMax    = 20_000
	crashGroupsLog  = 2_000 // messages the consuming child works through
	crashConsumers  = 8     // messages in flight in the consuming child
	confirmedPrefix = "confirmed "
)

func TestCrashDurability(t *testing.T) {
	switch os.Getenv(envCrashChild) {
	case "publish":
		crashPublishChild(t)
		return
	case "consume":
		crashConsumeChild(t)
		return
	}
	if testing.Short() {
		t.Skip("crash test runs child processes for tens of seconds")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envCrashSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", envCrashSeed, s, err)
		}
	}
	t.Logf("seed %d (set %s to repeat)", seed, envCrashSeed)
	rng := rand.New(rand.NewPCG(seed, seed))
	killMax := crashKillMax
	if s := os.Getenv(envCrashKillMax); s != "" {
		var err error
		if killMax, err = strconv.Atoi(s); err != nil || killMax < crashKillMin || killMax >= crashMessages {
			t.Fatalf("%s=%q: want a number in %d..%d", envCrashKillMax, s, crashKillMin, crashMessages-1)
		}
	}

	t.Run("publish", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "analyst.db")
		killAfter := crashKillMin + rng.IntN(killMax-crashKillMin+1)
		start := time.Now()
		lines := runAndKill(t, "publish", path, killAfter)
		confirmed := map[uint64]bool{}
		for _, l := range lines {
			confirmed[parseSeq(t, l)] = true
		}
		if len(confirmed) != len(lines) {
			t.Fatalf("child confirmed %d lines but only %d distinct messages", len(lines), len(confirmed))
		}
		killedAt := time.Since(start)

		ps, _ := openLog(t, path)
		// The log itself: every record readable, sequence numbers without holes, each message once.
		recs, err := ps.Read(crashTopic, 0, 0)
		if err != nil {
			t.Fatalf("read log after crash: %v", err)
		}
		present := map[uint64]bool{}
		for i, r := range recs {
			if r.Seq != uint64(i+1) {
				t.Fatalf("log record %d has sequence %d: the log has a hole", i+1, r.Seq)
			}
			n := payloadSeq(t, r.Payload)
			if present[n] {
				t.Fatalf("message %d is in the log twice", n)
			}
			present[n] = true
		}
		for n := range confirmed {
			if !present[n] {
				t.Fatalf("message %d was confirmed to its publisher but is not in the log after the crash", n)
			}
		}
		// Durable but not yet confirmed: publishes whose commit made it but whose Publish had
		// not returned (or whose line was not yet written) at the kill. At most one per publisher
		// plus what the child had not yet printed.
		extra := len(present) - len(confirmed)

		consumeStart := time.Now()
		var wg sync.WaitGroup
		for _, group := range []string{"a", "b"} {
			wg.Go(func() {
				got := consume(t, ps.Subscriber(group), len(present), 0)
				for n, times := range got {
					if !present[n] {
						t.Errorf("group %s got message %d that is not in the log", group, n)
					}
					if times != 1 {
						t.Errorf("group %s got message %d %d times, want once", group, n, times)
					}
				}
				if len(got) != len(present) {
					t.Errorf("group %s got %d distinct messages, want %d", group, len(got), len(present))
				}
			})
		}
		wg.Wait()
		t.Logf("killed after %d confirmed publishes (%.1fs, %d publishers): confirmed %d, present %d, "+
			"extra durable but unconfirmed %d; two groups consumed all %d exactly once in %.1fs",
			killAfter, killedAt.Seconds(), crashPublishers, len(confirmed), len(present), extra,
			len(present), time.Since(consumeStart).Seconds())
	})

	t.Run("consume", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "analyst.db")
		// A log of crashGroupsLog messages, published here and closed for the child.
		ps, db := openLog(t, path)
		publishAll(t, ps, crashGroupsLog, 32)
		ps.Close()
		if err := store.CloseDB(db); err != nil {
			t.Fatal(err)
		}

		killAfter := crashGroupsLog/10 + rng.IntN(crashGroupsLog*6/10)
		lines := runAndKill(t, "consume", path, killAfter)
		acked := map[uint64]bool{}
		for _, l := range lines {
			n := parseSeq(t, l)
			if acked[n] {
				t.Fatalf("child acked message %d twice", n)
			}
			acked[n] = true
		}

		start := time.Now()
		ps, _ = openLog(t, path)
		// The group resumes where its durable acks end; everything the child did not ack, and
		// the acks not yet committed at the kill, come again.
		got := consume(t, ps.SubscriberWith("g", crashConsumerOptions()), 0, crashGroupsLog-len(acked))
		redelivered := 0
		for n, times := range got {
			if times != 1 {
				t.Errorf("message %d delivered %d times after the restart, want once", n, times)
			}
			if acked[n] {
				redelivered++
			}
		}
		for n := uint64(0); n < crashGroupsLog; n++ {
			if !acked[n] && got[n] == 0 {
				t.Errorf("message %d was never acked by the child and not delivered after the restart", n)
			}
		}
		// Acks are group-committed in the background: at most the ack window plus the
		// messages in flight may come again.
		if limit := pipeline.AckWindow + crashConsumers; redelivered > limit {
			t.Errorf("%d acked messages delivered again after the restart; at most %d may be", redelivered, limit)
		}
		off, err := ps.Offset("g", crashTopic)
		if err != nil || off != crashGroupsLog {
			t.Errorf("group offset after consuming everything is %d (%v), want %d", off, err, crashGroupsLog)
		}
		t.Logf("consumer killed after %d acks of %d (concurrency %d); after restart %d delivered "+
			"in %.1fs, %d of them redelivered (acked before the kill but not yet committed)",
			len(acked), crashGroupsLog, crashConsumers, len(got), time.Since(start).Seconds(), redelivered)
	})
}

// crashConsumerOptions lets crashConsumers messages be in flight at once.
func crashConsumerOptions() pipeline.SubscriberOptions {
	return pipeline.SubscriberOptions{Concurrency: crashConsumers, Key: func(m message.Metadata) string { return m.Get("n") }}
}

// runAndKill starts the child and kills it with SIGKILL once it has printed killAfter confirmed
// lines; it returns every complete confirmed line the child printed.
func runAndKill(t *testing.T, mode, path string, killAfter int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashChild+"="+mode, envCrashDB+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, confirmedPrefix) {
			continue
		}
		lines = append(lines, l)
		if len(lines) == killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
			// Keep reading: lines the child wrote before it died are confirmations too.
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("%s child ended (%v) after %d confirmed lines, before the kill at %d", mode, err, len(lines), killAfter)
	}
	return lines
}

// crashPublishChild publishes crashMessages from crashPublishers goroutines and prints a line
// for each Publish that returned.
func crashPublishChild(t *testing.T) {
	db, err := store.OpenDB(os.Getenv(envCrashDB))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := ps.Publisher()
	lines := newLineWriter()
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range crashPublishers {
		wg.Go(func() {
			for {
				n := next.Add(1) - 1
				if n >= crashMessages {
					return
				}
				if err := pub.Publish(crashTopic, seqMessage(n)); err != nil {
					t.Error(err)
					return
				}
				lines.confirm(n)
			}
		})
	}
	wg.Wait()
	lines.close()
	ps.Close()
	store.CloseDB(db)
}

// crashConsumeChild consumes group "g" and prints a line for each message it has acked.
func crashConsumeChild(t *testing.T) {
	db, err := store.OpenDB(os.Getenv(envCrashDB))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := ps.SubscriberWith("g", crashConsumerOptions()).Subscribe(context.Background(), crashTopic)
	if err != nil {
		t.Fatal(err)
	}
	lines := newLineWriter()
	for range crashGroupsLog {
		msg := <-msgs
		msg.Ack()
		lines.confirm(payloadSeq(t, msg.Payload))
	}
	lines.close()
	ps.Close()
	store.CloseDB(db)
}

// lineWriter prints confirmed lines from many goroutines without making them wait on stdout.
type lineWriter struct {
	ch   chan uint64
	done chan struct{}
}

func newLineWriter() *lineWriter {
	w := &lineWriter{ch: make(chan uint64, 4096), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		out := bufio.NewWriter(os.Stdout)
		for n := range w.ch {
			fmt.Fprintf(out, "%s%d\n", confirmedPrefix, n)
			if len(w.ch) == 0 {
				out.Flush()
			}
		}
		out.Flush()
	}()
	return w
}

func (w *lineWriter) confirm(n uint64) { w.ch <- n }
func (w *lineWriter) close()           { close(w.ch); <-w.done }

// seqMessage is message n: an 8-byte payload holding n, and n as metadata for keyed delivery.
func seqMessage(n uint64) *message.Message {
	msg := message.NewMessage(fmt.Sprintf("m-%d", n), binary.BigEndian.AppendUint64(nil, n))
	msg.Metadata.Set("n", strconv.FormatUint(n, 10))
	return msg
}

func payloadSeq(t *testing.T, payload []byte) uint64 {
	if len(payload) != 8 {
		t.Errorf("payload of %d bytes, want 8", len(payload))
		return ^uint64(0)
	}
	return binary.BigEndian.Uint64(payload)
}

func parseSeq(t *testing.T, line string) uint64 {
	n, err := strconv.ParseUint(strings.TrimPrefix(line, confirmedPrefix), 10, 64)
	if err != nil {
		t.Fatalf("child printed %q: %v", line, err)
	}
	return n
}

// publishAll publishes messages 0..n-1 to crashTopic from the given number of goroutines.
func publishAll(t *testing.T, ps *pipeline.BoltPubSub, n, publishers int) {
	t.Helper()
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < uint64(n); i = next.Add(1) - 1 {
				if err := ps.Publish(crashTopic, seqMessage(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// consume acks messages of crashTopic until it has want distinct ones (or, with want 0,
// until it has wantAtLeast and nothing more arrives), then waits a little longer for duplicates
// and returns how often each message came.
func consume(t *testing.T, sub message.Subscriber, want, wantAtLeast int) map[uint64]int {
	t.Helper()
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, crashTopic)
	if err != nil {
		t.Error(err)
		return nil
	}
	got := map[uint64]int{}
	const quiet = 300 * time.Millisecond // no message for this long: the group has caught up
	deadline := time.After(2 * time.Minute)
	var settle <-chan time.Time
	for {
		if settle == nil && ((want > 0 && len(got) >= want) || (want == 0 && len(got) >= wantAtLeast)) {
			settle = time.After(quiet)
		}
		select {
		case msg := <-msgs:
			msg.Ack()
			got[payloadSeq(t, msg.Payload)]++
			if want == 0 && settle != nil {
				settle = time.After(quiet) // still catching up
			}
		case <-settle:
			return got
		case <-deadline:
			t.Errorf("consumed %d distinct messages in 2 minutes, want %d", len(got), max(want, wantAtLeast))
			return got
		}
	}
}
