// Command pubsub measures publish+consume throughput of the pipeline's durable bbolt Pub/Sub
// against NATS JetStream (file storage, SyncAlways: every message fsynced before its publish is
// confirmed, the durability the bbolt log gives) and Watermill's in-memory GoChannel as a
// reference, all in one process run.
//
// Each run has the shape of Watermill's tests.BenchSubscriber: one durable subscriber consumes and
// acks every message while P publishers publish N messages of 1 KiB between them, one message
// per Publish call; the clock stops when the subscriber has received all N distinct messages.
// Several publishers matter because the bbolt log group-commits concurrent publishes into one
// fsync.
//
//	go run ./bench/pubsub [-n 20000] [-publishers 1,16] [-rounds 3] [-size 1024] [-dir DIR] [-cpuprofile F]
//	go test -bench . -benchtime 20000x ./bench/pubsub
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/pipeline/natsembed"
	"github.com/ai-data-analyst/analyst/store"
)

const (
	benchTopic = "table.bench" // the NATS backend's stream holds the pipeline's topic families
	benchGroup = "bench"
)

// backend opens a fresh Pub/Sub whose data lives in dir.
type backend struct {
	name string
	open func(dir string) (*instance, error)
}

// instance is an open Pub/Sub: a publisher, one subscriber of benchGroup, and how to close both.
type instance struct {
	pub   message.Publisher
	sub   message.Subscriber
	close func() error
}

var backends = []backend{
	{"bolt", openBolt},
	{"jetstream", openJetStream},
	{"gochannel", openGoChannel},
}

func backendNamed(name string) backend {
	for _, b := range backends {
		if b.name == name {
			return b
		}
	}
	panic("unknown backend " + name)
}

func openBolt(dir string) (*instance, error) {
	db, err := store.OpenDB(filepath.Join(dir, "analyst.db"))
	if err != nil {
		return nil, err
	}
	ps, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		store.CloseDB(db)
		return nil, err
	}
	sub := ps.Subscriber(benchGroup)
	return &instance{pub: ps.Publisher(), sub: sub, close: func() error {
		return errors.Join(sub.Close(), ps.Close(), store.CloseDB(db))
	}}, nil
}

// openJetStream runs an in-process nats-server with SyncAlways and the pipeline's own NATS
// backend (the stream and durable consumer configuration the server uses in production).
func openJetStream(dir string) (*instance, error) {
	srv, err := natsembed.Start(dir, true)
	if err != nil {
		return nil, err
	}
	shutdown := func() { srv.Shutdown(); srv.WaitForShutdown() }
	be, err := pipeline.NewNATSBackend(srv.ClientURL(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		shutdown()
		return nil, err
	}
	sub := be.SubscriberWith(benchGroup, pipeline.SubscriberOptions{Concurrency: 1})
	return &instance{pub: be.Publisher(), sub: sub, close: func() error {
		err := errors.Join(sub.Close(), be.Close())
		shutdown()
		return err
	}}, nil
}

func openGoChannel(string) (*instance, error) {
	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	return &instance{pub: ps, sub: ps, close: ps.Close}, nil
}

// result is one measured run.
type result struct {
	Backend    string
	Publishers int
	Messages   int
	Published  time.Duration // until every Publish returned
	Consumed   time.Duration // until the subscriber had every message
}

// Rate is end-to-end throughput: messages published and consumed per second.
func (r result) Rate() float64 { return float64(r.Messages) / r.Consumed.Seconds() }

// PublishRate is the rate at which publishes were confirmed.
func (r result) PublishRate() float64 { return float64(r.Messages) / r.Published.Seconds() }

// runOnce opens b in a fresh directory under root, measures one run and closes it again.
func runOnce(b backend, root string, n, publishers, size int) (result, error) {
	dir, err := os.MkdirTemp(root, "pubsub-"+b.name+"-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	inst, err := b.open(dir)
	if err != nil {
		return result{}, fmt.Errorf("%s: open: %w", b.name, err)
	}
	r, err := measure(inst, n, publishers, size)
	r.Backend = b.name
	if cerr := inst.close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: close: %w", b.name, cerr)
	}
	return r, err
}

// consumeTimeout fails a run whose subscriber stops receiving, instead of hanging.
const consumeTimeout = time.Minute

// measure subscribes, starts the publishers and waits until the subscriber has acked all n
// messages. A redelivered message is acked again but counted once.
func measure(inst *instance, n, publishers, size int) (result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := inst.sub.Subscribe(ctx, benchTopic)
	if err != nil {
		return result{}, fmt.Errorf("subscribe: %w", err)
	}
	res := result{Publishers: publishers, Messages: n}
	start := time.Now()

	type outcome struct {
		took time.Duration
		err  error
	}
	pubDone := make(chan outcome, 1)
	go func() {
		var wg sync.WaitGroup
		errs := make([]error, publishers)
		for p := range publishers {
			wg.Go(func() {
				for i := p; i < n; i += publishers {
					if err := inst.pub.Publish(benchTopic, newMessage(i, size)); err != nil {
						errs[p] = fmt.Errorf("publish %d: %w", i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		pubDone <- outcome{time.Since(start), errors.Join(errs...)}
	}()

	seen := make([]bool, n)
	received := 0
	timeout := time.NewTimer(consumeTimeout)
	defer timeout.Stop()
	for received < n {
		select {
		case msg, ok := <-msgs:
			if !ok {
				return res, fmt.Errorf("subscription closed after %d of %d messages", received, n)
			}
			msg.Ack()
			i := int(binary.BigEndian.Uint64(msg.Payload))
			if i < 0 || i >= n {
				return res, fmt.Errorf("message %q carries sequence %d outside 0..%d", msg.UUID, i, n-1)
			}
			if !seen[i] {
				seen[i] = true
				received++
				timeout.Reset(consumeTimeout)
			}
		case o := <-pubDone:
			if o.err != nil {
				return res, o.err
			}
			res.Published = o.took
			pubDone = nil // all published; keep consuming
		case <-timeout.C:
			return res, fmt.Errorf("no message for %s after %d of %d", consumeTimeout, received, n)
		}
	}
	res.Consumed = time.Since(start)
	if pubDone != nil {
		o := <-pubDone
		res.Published = o.took
		return res, o.err
	}
	return res, nil
}

// newMessage is message i: its payload starts with i and is size bytes long.
func newMessage(i, size int) *message.Message {
	payload := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(payload, uint64(i))
	for j := 8; j < len(payload); j++ {
		payload[j] = byte('a' + j%26)
	}
	// A unique UUID: the NATS backend deduplicates publishes by message ID.
	return message.NewMessage("m-"+strconv.Itoa(i), payload)
}
