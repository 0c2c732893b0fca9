package pipeline_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// TestTrimDeletesOnlyOldAckedMessages: a message goes only when it is older than the cutoff and
// every group of its topic has acked it; a group behind the others keeps its messages and still
// gets all of them afterwards.
func TestTrimDeletesOnlyOldAckedMessages(t *testing.T) {
	ps, _ := openLog(t, "")
	const topic = "table.extracted"
	publishRange(t, ps, topic, 0, 10, 0)
	ackN(t, ps, "fast", topic, 10)
	ackN(t, ps, "slow", topic, 4)
	cutoff := instant()
	publishRange(t, ps, topic, 10, 15, 0)
	ackN(t, ps, "fast", topic, 5)

	if n := trim(t, ps, cutoff); n != 4 {
		t.Fatalf("trim deleted %d messages, want the 4 that both groups acked", n)
	}
	assertLog(t, ps, topic, 4, 15)

	// The slow group resumes at its offset, unharmed by the trim.
	if got := receive(t, ps, ps.Subscriber("slow"), "slow", topic, 11); !equalSeqs(got, 4, 15) {
		t.Fatalf("slow group after trim got %v, want messages 4..14 in order", got)
	}

	// Now both acked everything: the old ones go, the ones newer than the cutoff stay.
	if n := trim(t, ps, cutoff); n != 6 {
		t.Fatalf("second trim deleted %d messages, want the 6 older than the cutoff", n)
	}
	assertLog(t, ps, topic, 10, 15)
	if n := trim(t, ps, instant()); n != 5 {
		t.Fatalf("trim at now deleted %d messages, want the last 5", n)
	}
	assertLog(t, ps, topic, 0, 0)

	// The topic's numbering goes on after an emptying trim, so groups do not skip new messages.
	publishRange(t, ps, topic, 15, 16, 0)
	for _, group := range []string{"fast", "slow"} {
		if got := receive(t, ps, ps.Subscriber(group), group, topic, 1); !equalSeqs(got, 15, 16) {
			t.Fatalf("group %s after emptying trim got %v, want message 15", group, got)
		}
	}
	recs, err := ps.Read(topic, 0, 0)
	if err != nil || len(recs) != 1 || recs[0].Seq != 16 {
		t.Fatalf("after emptying trim and one publish the log holds %+v (%v), want sequence 16", recs, err)
	}
}

// TestTrimTopicWithoutGroups: a topic nobody consumes (a poison topic) keeps messages until
// they are older than the cutoff.
func TestTrimTopicWithoutGroups(t *testing.T) {
	ps, _ := openLog(t, "")
	const topic = "poison.sync"
	publishRange(t, ps, topic, 0, 5, 0)
	cutoff := instant()
	publishRange(t, ps, topic, 5, 8, 0)
	if n := trim(t, ps, cutoff); n != 5 {
		t.Fatalf("trim deleted %d messages, want the 5 older than the cutoff", n)
	}
	assertLog(t, ps, topic, 5, 8)
	if n := trim(t, ps, cutoff); n != 0 {
		t.Fatalf("repeated trim deleted %d messages, want 0", n)
	}
}

// TestTrimBoundsFileSize: a log under steady load, trimmed after each round, stops growing
// because bbolt reuses the freed pages.
func TestTrimBoundsFileSize(t *testing.T) {
	ps, db := openLog(t, "")
	const (
		rounds  = 6
		perRnd  = 800 // per topic and round
		payload = 1024
	)
	var sizes []int64
	for r := range rounds {
		from := r * perRnd
		// One consumed topic and one that only ages out.
		publishRange(t, ps, "table.converted", from, from+perRnd, payload)
		publishRange(t, ps, "poison.transform", from, from+perRnd, payload)
		ackN(t, ps, "profile", "table.converted", perRnd)
		if n := trim(t, ps, instant()); n != 2*perRnd {
			t.Fatalf("round %d: trim deleted %d messages, want %d", r, n, 2*perRnd)
		}
		sizes = append(sizes, fileSize(t, db.Path()))
	}
	t.Logf("file size after each round of %d KiB published and trimmed: %v", 2*perRnd*payload/1024, sizes)
	oneRound := int64(2 * perRnd * payload)
	if last := sizes[rounds-1]; last > 3*oneRound {
		t.Fatalf("after %d rounds the file is %d bytes, more than 3 rounds' worth (%d): freed pages are not reused",
			rounds, last, 3*oneRound)
	}
	if sizes[rounds-1] > sizes[1] {
		t.Fatalf("file grew from %d to %d bytes between round 2 and round %d", sizes[1], sizes[rounds-1], rounds)
	}
	assertLog(t, ps, "table.converted", 0, 0)
}

// TestCompactFile: after a trim, CompactFile writes a smaller file that holds the remaining
// messages with their sequence numbers, the groups' offsets and the topics' numbering.
func TestCompactFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "analyst.db"), filepath.Join(dir, "compact.db")
	db, err := store.OpenDB(src)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	const topic, bulk = "table.published", "poison.notify"
	publishRange(t, ps, bulk, 0, 3000, 1024)
	publishRange(t, ps, topic, 0, 10, 100)
	ackN(t, ps, "notify", topic, 6)
	if n := trim(t, ps, instant()); n != 3006 {
		t.Fatalf("trim deleted %d messages, want 3006", n)
	}

	// The store is open: compacting it must fail at once, not wait or copy a live file.
	if err := pipeline.CompactFile(src, dst); err == nil {
		t.Fatal("CompactFile of an open store succeeded")
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed CompactFile left %s behind (%v)", dst, err)
	}
	ps.Close()
	if err := store.CloseDB(db); err != nil {
		t.Fatal(err)
	}

	if err := pipeline.CompactFile(src, dst); err != nil {
		t.Fatal(err)
	}
	before, after := fileSize(t, src), fileSize(t, dst)
	t.Logf("compacted %d bytes to %d", before, after)
	if after >= before/4 {
		t.Fatalf("compacted file is %d bytes, not much smaller than the trimmed %d", after, before)
	}
	if err := pipeline.CompactFile(src, dst); err == nil {
		t.Fatal("CompactFile overwrote an existing file")
	}

	cps, _ := openLog(t, dst)
	assertLog(t, cps, topic, 6, 10)
	assertLog(t, cps, bulk, 0, 0)
	if off, err := cps.Offset("notify", topic); err != nil || off != 6 {
		t.Fatalf("offset after compaction is %d (%v), want 6", off, err)
	}
	// The group goes on where it was; new messages continue the old numbering.
	publishRange(t, cps, topic, 10, 11, 100)
	publishRange(t, cps, bulk, 3000, 3001, 0)
	if got := receive(t, cps, cps.Subscriber("notify"), "notify", topic, 5); !equalSeqs(got, 6, 11) {
		t.Fatalf("group after compaction got %v, want messages 6..10", got)
	}
	for tp, want := range map[string]uint64{topic: 11, bulk: 3001} {
		recs, err := cps.Read(tp, 0, 0)
		if err != nil || len(recs) == 0 || recs[len(recs)-1].Seq != want {
			t.Fatalf("%s: newest sequence after compaction is not %d: %+v (%v)", tp, want, recs, err)
		}
	}
}

// publishRange publishes messages from..to-1 (payload: the number, padded to size bytes).
func publishRange(t *testing.T, ps *pipeline.BoltPubSub, topic string, from, to, size int) {
	t.Helper()
	msgs := make([]*message.Message, 0, to-from)
	for i := from; i < to; i++ {
		m := seqMessage(uint64(i))
		if size > 8 {
			m.Payload = append(m.Payload, bytes.Repeat([]byte{'x'}, size-8)...)
		}
		msgs = append(msgs, m)
	}
	if err := ps.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
}

// ackN receives and acks the next n messages of group on topic, several in flight at once.
func ackN(t *testing.T, ps *pipeline.BoltPubSub, group, topic string, n int) {
	t.Helper()
	opts := pipeline.SubscriberOptions{Concurrency: 16, Key: func(m message.Metadata) string { return m.Get("n") }}
	receive(t, ps, ps.SubscriberWith(group, opts), group, topic, n)
}

// receive acks the next n messages the subscriber of group gets and returns their numbers in
// order. It closes the subscriber only once the acks are committed, as a running handler would.
func receive(t *testing.T, ps *pipeline.BoltPubSub, sub message.Subscriber, group, topic string, n int) []uint64 {
	t.Helper()
	defer sub.Close()
	start, err := ps.Offset(group, topic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for len(got) < n {
		select {
		case m := <-msgs:
			got = append(got, binary.BigEndian.Uint64(m.Payload))
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("group %s received %d of %d messages on %s", group, len(got), n, topic)
		}
	}
	waitOffset(t, ps, group, topic, start+uint64(n))
	return got
}

func waitOffset(t *testing.T, ps *pipeline.BoltPubSub, group, topic string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		off, err := ps.Offset(group, topic)
		if err != nil {
			t.Fatal(err)
		}
		if off == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s offset on %s is %d, want %d", group, topic, off, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// instant is a cutoff strictly after everything published so far and before anything next.
func instant() time.Time {
	time.Sleep(2 * time.Millisecond)
	now := time.Now()
	time.Sleep(2 * time.Millisecond)
	return now
}

func trim(t *testing.T, ps *pipeline.BoltPubSub, cutoff time.Time) int {
	t.Helper()
	n, err := ps.Trim(cutoff)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// assertLog checks that topic holds exactly messages from..to-1, stored at sequence i+1.
func assertLog(t *testing.T, ps *pipeline.BoltPubSub, topic string, from, to int) {
	t.Helper()
	recs, err := ps.Read(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, r := range recs {
		n := binary.BigEndian.Uint64(r.Payload)
		if r.Seq != n+1 {
			t.Fatalf("%s: message %d stored at sequence %d, want %d", topic, n, r.Seq, n+1)
		}
		got = append(got, n)
	}
	if !equalSeqs(got, from, to) {
		t.Fatalf("%s holds messages %v, want %d..%d", topic, got, from, to-1)
	}
}

func equalSeqs(got []uint64, from, to int) bool {
	if len(got) != to-from {
		return false
	}
	for i, n := range got {
		if n != uint64(from+i) {
			return false
		}
	}
	return true
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A group that subscribed but has acked nothing yet still holds back the trim.
func TestTrimKeepsMessagesOfGroupWithoutAcks(t *testing.T) {
	ps, _ := openLog(t, "")
	publishRange(t, ps, "table.extracted", 0, 3, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := ps.Subscriber("late").Subscribe(ctx, "table.extracted")
	if err != nil {
		t.Fatal(err)
	}
	<-msgs // in the handler, not yet acked
	if n := trim(t, ps, instant()); n != 0 {
		t.Errorf("trim deleted %d messages the group has not acked", n)
	}
}
