package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
	bucketOffsets = []byte("log.offsets") // group + "\x00" + topic -> last acked seq
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
}

// NewBoltPubSub runs the log on an open bbolt database; it does not close db.
func NewBoltPubSub(db *bolt.DB, logger watermill.LoggerAdapter) (*BoltPubSub, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTopics, bucketOffsets} {
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
		ps.commit(batch)
	}
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
func (ps *BoltPubSub) write(fn func(tx *bolt.Tx) error) error {
	r := &writeReq{fn: fn, done: make(chan error, 1)}
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
	if topic == "" {
		return errors.New("pipeline: empty topic")
	}
	now := time.Now()
	recs := make([][]byte, len(msgs))
	for i, m := range msgs {
		recs[i] = encodeRecord(now, m)
	}
	err := ps.write(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketTopics).CreateBucketIfNotExists([]byte(topic))
		if err != nil {
			return err
		}
		b.FillPercent = 1 // append-only keys: pack pages full
		for _, rec := range recs {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pipeline: publish to %s: %w", topic, err)
	}
	ps.wake(topic)
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
	d, err := s.ps.dispatcher(s.group, topic)
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

// dispatcher feeds one consumer group's messages of one topic, in order, to its subscriptions.
type dispatcher struct {
	ps           *BoltPubSub
	group, topic string
	work         chan *delivery
}

type delivery struct {
	rec    Record
	result chan bool // true = acked
}

func (ps *BoltPubSub) dispatcher(group, topic string) (*dispatcher, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, ErrClosed
	}
	key := string(offsetKey(group, topic))
	if d, ok := ps.dispatchers[key]; ok {
		return d, nil
	}
	d := &dispatcher{ps: ps, group: group, topic: topic, work: make(chan *delivery)}
	ps.dispatchers[key] = d
	ps.wg.Add(1)
	go d.run()
	return d, nil
}

func (d *dispatcher) run() {
	defer d.ps.wg.Done()
	offset, err := d.ps.Offset(d.group, d.topic)
	if err != nil {
		d.ps.logger.Error("cannot read offset", err, watermill.LogFields{"group": d.group, "topic": d.topic})
		return
	}
	for {
		wake := d.ps.wakeup(d.topic)
		rec, ok, err := d.ps.next(d.topic, offset)
		if err != nil {
			d.ps.logger.Error("cannot read log", err, watermill.LogFields{"topic": d.topic})
			ok = false
		}
		if !ok {
			select {
			case <-wake:
			case <-time.After(time.Second): // also picks up a failed read again
			case <-d.ps.closing:
				return
			}
			continue
		}
		for {
			del := &delivery{rec: rec, result: make(chan bool, 1)}
			select {
			case d.work <- del:
			case <-d.ps.closing:
				return
			}
			if <-del.result {
				break
			}
		}
		if err := d.ps.commitOffset(d.group, d.topic, rec.Seq); err != nil {
			// Not durable: keep going in memory; the message may be delivered again after a restart.
			d.ps.logger.Error("cannot commit offset", err, watermill.LogFields{"group": d.group, "topic": d.topic})
		}
		offset = rec.Seq
	}
}

// serve hands the dispatcher's deliveries to out until ctx ends or the subscriber closes.
func (d *dispatcher) serve(ctx context.Context, closing <-chan struct{}, out chan<- *message.Message) {
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
		msg.Metadata = del.rec.Metadata
		msgCtx, cancel := context.WithCancel(ctx)
		msg.SetContext(msgCtx)
		acked, stop := deliver(ctx, closing, d.ps.closing, out, msg)
		cancel()
		del.result <- acked
		if stop {
			return
		}
	}
}

func deliver(ctx context.Context, closing, psClosing <-chan struct{}, out chan<- *message.Message, msg *message.Message) (acked, stop bool) {
	select {
	case out <- msg:
	case <-ctx.Done():
		return false, true
	case <-closing:
		return false, true
	case <-psClosing:
		return false, true
	}
	select {
	case <-msg.Acked():
		return true, false
	case <-msg.Nacked():
		return false, false
	case <-ctx.Done():
	case <-closing:
	case <-psClosing:
	}
	// Going away: an ack that raced with the shutdown still counts.
	select {
	case <-msg.Acked():
		return true, true
	default:
		return false, true
	}
}

// next reads the first message of topic after seq.
func (ps *BoltPubSub) next(topic string, after uint64) (Record, bool, error) {
	var rec Record
	var found bool
	err := ps.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTopics).Bucket([]byte(topic))
		if b == nil {
			return nil
		}
		k, v := b.Cursor().Seek(seqKey(after + 1))
		if k == nil {
			return nil
		}
		var err error
		rec, err = decodeRecord(topic, binary.BigEndian.Uint64(k), v)
		found = err == nil
		return err
	})
	return rec, found, err
}

// Offset is the last acked sequence number of group on topic (0: none).
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

func (ps *BoltPubSub) commitOffset(group, topic string, seq uint64) error {
	return ps.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOffsets).Put(offsetKey(group, topic), seqKey(seq))
	})
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
