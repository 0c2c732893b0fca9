package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	bolt "go.etcd.io/bbolt"
)

// Bucket layout of the log inside the shared bbolt file. Application state (package store)
// uses its own buckets in the same file.
var (
	bucketTopics  = []byte("log.topics")  // topic name -> bucket of seq(8 bytes BE) -> record
	bucketOffsets = []byte("log.offsets") // group + "\x00" + topic -> watermark: every seq up to it is acked
	bucketAcked   = []byte("log.acked")   // group + "\x00" + topic + "\x00" + seq -> acked above the watermark
)

// ErrClosed is returned by a publisher or subscriber used after Close.
var ErrClosed = errors.New("pipeline: closed")

// BoltPubSub is a durable Watermill Pub/Sub on a bbolt file.
//
// Every topic is an ordered log. A Publish returns after its messages are committed and fsynced;
// concurrent publishes (and offset commits) are group-committed so they share one fsync.
// Each consumer group has its own offset per topic and receives the topic's messages in order,
// one in flight at a time: the next message is delivered only after the previous one is acked,
// and a nacked message (or one in flight when its subscriber goes away) is delivered again.
// Subscribers of one group share the work. A new group starts at the oldest retained message.
type BoltPubSub struct {
	db     *bolt.DB
	logger watermill.LoggerAdapter

	writeMu      sync.RWMutex // guards sends on writes against Close
	writesClosed bool
	writes       chan *writeReq
	closing      chan struct{}
	wg           sync.WaitGroup
	writerDone   chan struct{}

	mu          sync.Mutex
	closed      bool
	wakeups     map[string]chan struct{} // topic -> closed when a new message lands
	dispatchers map[string]*dispatcher   // group + "\x00" + topic
}

type writeReq struct {
	fn   func(tx *bolt.Tx) error
	done chan error
	lazy bool // nobody waits: may wait a little to share a commit with a write that matters
}

// ackLinger is how long lazy writes alone wait for company before they are committed.
const ackLinger = 5 * time.Millisecond

// AckWindow bounds a group's acks that are not yet durable: past it the dispatcher waits for
// the commit, so a crash delivers at most this many acked messages (plus those in flight) again.
const AckWindow = 64

// NewBoltPubSub runs the log on an open bbolt database; it does not close db.
func NewBoltPubSub(db *bolt.DB, logger watermill.LoggerAdapter) (*BoltPubSub, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTopics, bucketOffsets, bucketAcked} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline: init log: %w", err)
	}
	ps := &BoltPubSub{
		db:          db,
		logger:      logger,
		writes:      make(chan *writeReq, 1024),
		closing:     make(chan struct{}),
		wakeups:     map[string]chan struct{}{},
		dispatchers: map[string]*dispatcher{},
		writerDone:  make(chan struct{}),
	}
	go ps.writer()
	return ps, nil
}

// DB is the underlying bbolt database.
func (ps *BoltPubSub) DB() *bolt.DB { return ps.db }

// writer group-commits queued writes: it takes whatever is queued, runs it in one transaction
// (one fsync), answers everyone, and repeats. No request waits for a timer.
// It runs until Close has closed the writes channel and everything queued is committed.
func (ps *BoltPubSub) writer() {
	defer close(ps.writerDone)
	batch := make([]*writeReq, 0, 256)
	for r := range ps.writes {
		batch = append(batch[:0], r)
	drain:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-ps.writes:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if allLazy(batch) {
			t := time.NewTimer(ackLinger)
		linger:
			for len(batch) < cap(batch) {
				select {
				case r, ok := <-ps.writes:
					if !ok {
						break linger
					}
					batch = append(batch, r)
					if !r.lazy {
						break linger
					}
				case <-t.C:
					break linger
				}
			}
			t.Stop()
		}
		ps.commit(batch)
	}
}

func allLazy(batch []*writeReq) bool {
	for _, r := range batch {
		if !r.lazy {
			return false
		}
	}
	return true
}

func (ps *BoltPubSub) commit(batch []*writeReq) {
	errs := make([]error, len(batch))
	err := ps.db.Update(func(tx *bolt.Tx) error {
		for i, r := range batch {
			errs[i] = r.fn(tx)
		}
		return nil
	})
	for i, r := range batch {
		if err != nil {
			errs[i] = err
		}
		r.done <- errs[i]
	}
}

// write runs fn in the next group commit and waits until it is durable.
func (ps *BoltPubSub) write(fn func(tx *bolt.Tx) error) error { return ps.writeReq(fn, false) }

func (ps *BoltPubSub) writeReq(fn func(tx *bolt.Tx) error, lazy bool) error {
	r := &writeReq{fn: fn, done: make(chan error, 1), lazy: lazy}
	ps.writeMu.RLock()
	if ps.writesClosed {
		ps.writeMu.RUnlock()
		return ErrClosed
	}
	ps.writes <- r
	ps.writeMu.RUnlock()
	return <-r.done // the writer answers everything queued before it stops
}

// Publish appends messages to topic and returns once they are durable.
func (ps *BoltPubSub) Publish(topic string, msgs ...*message.Message) error {
	entries := make([]TopicMessage, len(msgs))
	for i, m := range msgs {
		entries[i] = TopicMessage{Topic: topic, Message: m}
	}
	return ps.PublishAtomic(entries...)
}

// TopicMessage is a message bound for a topic.
type TopicMessage struct {
	Topic   string
	Message *message.Message
}

// PublishAtomic appends messages to their topics in one transaction: all or none are durable.
func (ps *BoltPubSub) PublishAtomic(entries ...TopicMessage) error {
	now := time.Now()
	recs := make([][]byte, len(entries))
	for i, e := range entries {
		if e.Topic == "" {
			return errors.New("pipeline: empty topic")
		}
		recs[i] = encodeRecord(now, e.Message)
	}
	err := ps.write(func(tx *bolt.Tx) error {
		for i, e := range entries {
			b, err := tx.Bucket(bucketTopics).CreateBucketIfNotExists([]byte(e.Topic))
			if err != nil {
				return err
			}
			b.FillPercent = 1 // append-only keys: pack pages full
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pipeline: publish: %w", err)
	}
	for _, e := range entries {
		ps.wake(e.Topic)
	}
	return nil
}

// wakeup returns a channel closed at the next publish to topic.
func (ps *BoltPubSub) wakeup(topic string) <-chan struct{} {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ch, ok := ps.wakeups[topic]
	if !ok {
		ch = make(chan struct{})
		ps.wakeups[topic] = ch
	}
	return ch
}

func (ps *BoltPubSub) wake(topic string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ch, ok := ps.wakeups[topic]; ok {
		close(ch)
		delete(ps.wakeups, topic)
	}
}

// Close stops all subscriptions and the writer. It does not close the bbolt database.
func (ps *BoltPubSub) Close() error {
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return nil
	}
	ps.closed = true
	ps.mu.Unlock()
	close(ps.closing)
	ps.wg.Wait() // dispatchers have handed back their in-flight messages
	ps.writeMu.Lock()
	ps.writesClosed = true
	close(ps.writes)
	ps.writeMu.Unlock()
	<-ps.writerDone
	return nil
}

// Publisher is a Watermill publisher handle on the log; closing it leaves the log open.
func (ps *BoltPubSub) Publisher() message.Publisher { return &boltPublisher{ps: ps} }

// Subscriber is a Watermill subscriber handle for a consumer group; closing it ends its
// subscriptions (in-flight messages go back to the group) and leaves the log open.
func (ps *BoltPubSub) Subscriber(group string) message.Subscriber {
	return &boltSubscriber{ps: ps, group: group, closing: make(chan struct{})}
}

type boltPublisher struct {
	ps     *BoltPubSub
	mu     sync.RWMutex
	closed bool
}

func (p *boltPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	return p.ps.Publish(topic, msgs...)
}

func (p *boltPublisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

type boltSubscriber struct {
	ps      *BoltPubSub
	group   string
	opts    SubscriberOptions
	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

func (s *boltSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	d, err := s.ps.dispatcher(s.group, topic, s.opts)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		d.serve(ctx, s.closing, out)
	}()
	return out, nil
}

// SubscribeInitialize creates the topic so that Subscribe and Publish agree on it early.
func (s *boltSubscriber) SubscribeInitialize(topic string) error {
	return s.ps.write(func(tx *bolt.Tx) error {
		_, err := tx.Bucket(bucketTopics).CreateBucketIfNotExists([]byte(topic))
		return err
	})
}

func (s *boltSubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func offsetKey(group, topic string) []byte { return []byte(group + "\x00" + topic) }

// SubscriberOptions tune a consumer group's delivery.
type SubscriberOptions struct {
	// Concurrency is how many messages may be in flight at once (default 1: strict order).
	Concurrency int
	// Key groups messages that must stay in order (e.g. by table); messages with different keys
	// may run concurrently. Only used when Concurrency > 1; nil means the "table" metadata.
	Key func(message.Metadata) string
}

// key is the function that groups messages: Key, or the "table" metadata.
func (o SubscriberOptions) key() func(message.Metadata) string {
	if o.Key != nil {
		return o.Key
	}
	return func(m message.Metadata) string { return m.Get(metadataTable) }
}

// SubscriberWith is Subscriber with delivery options. All subscribers of one group on one topic
// share the options of the first subscription.
func (ps *BoltPubSub) SubscriberWith(group string, opts SubscriberOptions) message.Subscriber {
	return &boltSubscriber{ps: ps, group: group, opts: opts, closing: make(chan struct{})}
}

// dispatcher feeds one consumer group's messages of one topic to its subscriptions: in order,
// with at most opts.Concurrency in flight and never two of the same key at once.
type dispatcher struct {
	ps           *BoltPubSub
	group, topic string
	limit        int
	key          func(message.Metadata) string
	work         chan *delivery
	results      chan *delivery
}

type delivery struct {
	rec   Record
	key   string
	acked bool
}

func (ps *BoltPubSub) dispatcher(group, topic string, opts SubscriberOptions) (*dispatcher, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, ErrClosed
	}
	k := string(offsetKey(group, topic))
	if d, ok := ps.dispatchers[k]; ok {
		return d, nil
	}
	d := &dispatcher{ps: ps, group: group, topic: topic, limit: max(opts.Concurrency, 1), key: opts.key(),
		work: make(chan *delivery), results: make(chan *delivery)}
	ps.dispatchers[k] = d
	ps.wg.Add(1)
	go d.run()
	return d, nil
}

func (d *dispatcher) run() {
	defer d.ps.wg.Done()
	acks, err := d.ps.loadAcks(d.group, d.topic)
	if err != nil {
		d.ps.logger.Error("cannot read offset", err, watermill.LogFields{"group": d.group, "topic": d.topic})
		return
	}
	// Register the group so that Trim keeps what it has not acked yet.
	err = d.ps.write(func(tx *bolt.Tx) error {
		offsets, k := tx.Bucket(bucketOffsets), offsetKey(d.group, d.topic)
		if offsets.Get(k) == nil {
			return offsets.Put(k, seqKey(0))
		}
		return nil
	})
	if err != nil {
		d.ps.logger.Error("cannot register group", err, watermill.LogFields{"group": d.group, "topic": d.topic})
		return
	}
	cursor := acks.watermark
	var (
		next       *delivery   // read from the log, not yet handed out
		retries    []*delivery // nacked, handed out again before anything else
		inFlight   int
		busy       = map[string]bool{}
		committing <-chan error // the ack commit in progress, if any
		unsynced   int          // acks not yet durable (queued or being committed)
		covered    int          // acks the commit in progress makes durable
	)
	for {
		var wake <-chan struct{}
		if next == nil {
			wake = d.ps.wakeup(d.topic)
			rec, ok, err := d.ps.next(d.topic, cursor, acks.above)
			if err != nil {
				d.ps.logger.Error("cannot read log", err, watermill.LogFields{"topic": d.topic})
			}
			if ok {
				next = &delivery{rec: rec, key: d.key(rec.Metadata)}
				cursor = rec.Seq
			}
		}
		var send *delivery
		if len(retries) > 0 {
			send = retries[0]
		} else if next != nil && inFlight < d.limit && !(d.limit > 1 && busy[next.key]) && unsynced < AckWindow {
			send = next
		}
		var sendCh chan *delivery
		if send != nil {
			sendCh = d.work
		}
		var idle <-chan time.Time
		if next == nil {
			idle = time.After(time.Second) // also retries a failed read
		}
		select {
		case sendCh <- send:
			if len(retries) > 0 && send == retries[0] {
				retries = retries[1:]
			} else {
				next = nil
				inFlight++
				busy[send.key] = true
			}
		case del := <-d.results:
			if !del.acked {
				retries = append(retries, del)
				continue
			}
			inFlight--
			delete(busy, del.key)
			acks.mark(del.rec.Seq)
			unsynced++
			if committing == nil {
				committing, covered = d.commitAsync(acks), unsynced
			}
		case err := <-committing:
			committing = nil
			unsynced -= covered
			if err != nil {
				d.ps.logger.Error("cannot commit ack", err, watermill.LogFields{"group": d.group, "topic": d.topic})
			}
			if acks.dirty() {
				committing, covered = d.commitAsync(acks), unsynced
			}
		case <-wake:
		case <-idle:
		case <-d.ps.closing:
			if committing != nil {
				<-committing
			}
			if acks.dirty() {
				<-d.commitAsync(acks)
			}
			return
		}
	}
}

// serve hands the dispatcher's deliveries to out until ctx ends or the subscriber closes.
// Each delivered message waits for its ack in its own goroutine, so several can be in flight.
func (d *dispatcher) serve(ctx context.Context, closing <-chan struct{}, out chan<- *message.Message) {
	var pending sync.WaitGroup
	defer pending.Wait()
	for {
		var del *delivery
		select {
		case del = <-d.work:
		case <-ctx.Done():
			return
		case <-closing:
			return
		case <-d.ps.closing:
			return
		}
		msg := message.NewMessage(del.rec.UUID, del.rec.Payload)
		msg.Metadata = make(message.Metadata, len(del.rec.Metadata))
		for k, v := range del.rec.Metadata {
			msg.Metadata[k] = v
		}
		msgCtx, cancel := context.WithCancel(ctx)
		msg.SetContext(msgCtx)
		sent := false
		select {
		case out <- msg:
			sent = true
		case <-ctx.Done():
		case <-closing:
		case <-d.ps.closing:
		}
		if !sent {
			cancel()
			d.report(del, false)
			return
		}
		pending.Add(1)
		go func() {
			defer pending.Done()
			defer cancel()
			d.report(del, awaitAck(ctx, closing, d.ps.closing, msg))
		}()
	}
}

// report returns a delivery's outcome to the dispatcher (dropped if the log is closing:
// the message was not acked durably and will be delivered again after a restart).
func (d *dispatcher) report(del *delivery, acked bool) {
	del.acked = acked
	select {
	case d.results <- del:
	case <-d.ps.closing:
	}
}

func awaitAck(ctx context.Context, closing, psClosing <-chan struct{}, msg *message.Message) bool {
	select {
	case <-msg.Acked():
		return true
	case <-msg.Nacked():
		return false
	case <-ctx.Done():
	case <-closing:
	case <-psClosing:
	}
	// Going away: an ack that raced with the shutdown still counts.
	select {
	case <-msg.Acked():
		return true
	default:
		return false
	}
}

// ackState is a group's position on a topic: everything up to watermark is acked, plus the
// sequence numbers in above (acked out of order while earlier ones were still in flight).
// stored is what the log holds durably (or is being committed).
type ackState struct {
	watermark uint64
	above     map[uint64]bool
	stored    struct {
		watermark uint64
		above     map[uint64]bool
	}
}

func (st *ackState) mark(seq uint64) {
	st.above[seq] = true
	for st.above[st.watermark+1] {
		delete(st.above, st.watermark+1)
		st.watermark++
	}
}

func (st *ackState) dirty() bool {
	return st.watermark != st.stored.watermark || len(st.above) != len(st.stored.above)
}

// commitAsync commits the acks not yet stored in one write and reports its outcome on the channel.
// Acks are not waited for: a crash before the commit delivers their messages again.
func (d *dispatcher) commitAsync(st *ackState) <-chan error {
	var put, del [][]byte
	prefix := append(offsetKey(d.group, d.topic), 0)
	key := func(seq uint64) []byte { return append(prefix[:len(prefix):len(prefix)], seqKey(seq)...) }
	for seq := range st.above {
		if !st.stored.above[seq] {
			put = append(put, key(seq))
		}
	}
	for seq := range st.stored.above {
		if !st.above[seq] {
			del = append(del, key(seq))
		}
	}
	watermark := st.watermark
	st.stored.watermark = watermark
	st.stored.above = maps.Clone(st.above)
	done := make(chan error, 1)
	go func() {
		done <- d.ps.writeReq(func(tx *bolt.Tx) error {
			acked := tx.Bucket(bucketAcked)
			for _, k := range del {
				if err := acked.Delete(k); err != nil {
					return err
				}
			}
			for _, k := range put {
				if err := acked.Put(k, nil); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketOffsets).Put(offsetKey(d.group, d.topic), seqKey(watermark))
		}, true)
	}()
	return done
}

// next reads the first message of topic after seq that is not in skip.
func (ps *BoltPubSub) next(topic string, after uint64, skip map[uint64]bool) (Record, bool, error) {
	var rec Record
	var found bool
	err := ps.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTopics).Bucket([]byte(topic))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if skip[seq] {
				continue
			}
			var err error
			rec, err = decodeRecord(topic, seq, v)
			found = err == nil
			return err
		}
		return nil
	})
	return rec, found, err
}

// Lag counts, up to limit, the messages of topic that group has not acknowledged.
func (ps *BoltPubSub) Lag(group, topic string, limit int) (int, error) {
	off, err := ps.Offset(group, topic)
	if err != nil {
		return 0, err
	}
	recs, err := ps.Read(topic, off, limit)
	return len(recs), err
}

// Offset is group's watermark on topic: every message up to it is acked (0: none).
func (ps *BoltPubSub) Offset(group, topic string) (uint64, error) {
	var off uint64
	err := ps.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketOffsets).Get(offsetKey(group, topic)); len(v) == 8 {
			off = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return off, err
}

// Backlog is how many messages the consumer groups subscribed in this process have not yet
// durably acked, over all their topics: 0 once everything queued so far is done.
func (ps *BoltPubSub) Backlog() (int, error) {
	ps.mu.Lock()
	subs := make([][2]string, 0, len(ps.dispatchers))
	for _, d := range ps.dispatchers {
		subs = append(subs, [2]string{d.group, d.topic})
	}
	ps.mu.Unlock()
	n := 0
	for _, gt := range subs {
		st, err := ps.loadAcks(gt[0], gt[1])
		if err != nil {
			return 0, err
		}
		recs, err := ps.Read(gt[1], st.watermark, 0)
		if err != nil {
			return 0, err
		}
		for _, r := range recs {
			if !st.above[r.Seq] {
				n++
			}
		}
	}
	return n, nil
}

func (ps *BoltPubSub) loadAcks(group, topic string) (*ackState, error) {
	st := &ackState{above: map[uint64]bool{}}
	err := ps.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketOffsets).Get(offsetKey(group, topic)); len(v) == 8 {
			st.watermark = binary.BigEndian.Uint64(v)
		}
		prefix := append(offsetKey(group, topic), 0)
		c := tx.Bucket(bucketAcked).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			st.above[binary.BigEndian.Uint64(k[len(prefix):])] = true
		}
		return nil
	})
	st.stored.watermark = st.watermark
	st.stored.above = maps.Clone(st.above)
	return st, err
}

// Topics lists the topics in the log.
func (ps *BoltPubSub) Topics() ([]string, error) {
	var topics []string
	err := ps.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTopics).ForEachBucket(func(k []byte) error {
			topics = append(topics, string(k))
			return nil
		})
	})
	return topics, err
}

// Read returns up to limit records of topic after seq, oldest first.
func (ps *BoltPubSub) Read(topic string, after uint64, limit int) ([]Record, error) {
	var recs []Record
	err := ps.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTopics).Bucket([]byte(topic))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && (limit <= 0 || len(recs) < limit); k, v = c.Next() {
			rec, err := decodeRecord(topic, binary.BigEndian.Uint64(k), v)
			if err != nil {
				return fmt.Errorf("topic %s seq %d: %w", topic, binary.BigEndian.Uint64(k), err)
			}
			recs = append(recs, rec)
		}
		return nil
	})
	return recs, err
}

// Wait returns a channel that is closed when a message is next published to topic.
func (ps *BoltPubSub) Wait(topic string) <-chan struct{} { return ps.wakeup(topic) }

// groupsOf returns each group's offset on topic.
func groupsOf(tx *bolt.Tx, topic string) map[string]uint64 {
	groups := map[string]uint64{}
	suffix := "\x00" + topic
	tx.Bucket(bucketOffsets).ForEach(func(k, v []byte) error {
		if s := string(k); strings.HasSuffix(s, suffix) && len(v) == 8 {
			groups[strings.TrimSuffix(s, suffix)] = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return groups
}
