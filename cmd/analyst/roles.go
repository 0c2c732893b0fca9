package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// Scale-out: with pipeline.backend nats and the instance folder on shared storage, any number of
// workers run the pipeline stages; JetStream queue groups hand each message to one of them.
// A worker keeps its run records and stage markers in its own bbolt file
// (data/workers/<id>/analyst.db): bbolt allows one process per file. What must be shared lives in
// NATS: the messages themselves, and a key-value bucket of outputs already published, so that
// a stage redone by another worker after a crash publishes its result only once.

func init() {
	register(command{name: "worker", usage: "[--id ID] [--ack-wait D]  run only the pipeline stages, sharing the work over NATS (serve --role worker)", run: runWorker})
}

const (
	publishedBucket = "analyst_published" // NATS KV: output key -> message id
	publishedTTL    = 7 * 24 * time.Hour
	// natsDedupWindow is the stream's duplicate window (pipeline.ensureStream); ack waits must stay below it.
	natsDedupWindow = 10 * time.Minute
)

func runWorker(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("worker")
	host, _ := os.Hostname()
	id := fs.String("id", envOr("ANALYST_WORKER_ID", host), "worker id: names its own store under data/workers (env ANALYST_WORKER_ID)")
	ackWait := fs.Duration("ack-wait", 5*time.Minute, "a message a worker holds this long without finishing goes to another worker; keep it above the longest stage")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ackWait >= natsDedupWindow {
		return fmt.Errorf("--ack-wait must be below %v (the stream's duplicate window)", natsDedupWindow)
	}
	cfg, err := loadConfig(g, openOptions{})
	if err != nil {
		return err
	}
	if cfg.Instance.Pipeline.Backend != config.BackendNATS {
		return errors.New("workers share the pipeline over NATS: set pipeline.backend: nats and pipeline.nats_url")
	}
	a, err := openWorker(cfg, safeName(*id), *ackWait, g.logger)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.start(ctx); err != nil {
		return err
	}
	a.logger.Info("worker running", "id", *id, "nats", cfg.Instance.Pipeline.NATSURL, "home", cfg.Paths.Home)
	<-ctx.Done()
	a.logger.Info("worker stopping")
	return nil
}

// openWorker opens the worker's own store and the pipeline on the shared NATS stream.
func openWorker(cfg *config.Config, id string, ackWait time.Duration, logger *slog.Logger) (*app, error) {
	db, err := store.OpenDB(filepath.Join(cfg.Paths.DataDir, "workers", id, "analyst.db"))
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, db: db, logger: logger.With("worker", id)}
	if err := a.initWorker(ackWait); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *app) initWorker(ackWait time.Duration) error {
	if _, err := store.Migrate(a.db, a.logger); err != nil {
		return err
	}
	var err error
	if a.backend, err = newSharedBackend(a.cfg.Instance.Pipeline.NATSURL, ackWait, a.logger); err != nil {
		return err
	}
	if a.runs, err = store.NewRuns(a.db); err != nil {
		return err
	}
	a.env = handlers.NewEnv(a.cfg, a.runs, a.logger)
	if a.router, err = pipeline.NewRouter(a.backend, pipeline.RouterConfig{Logger: a.logger, OnStage: a.env.TrackStage, Concurrency: a.cfg.Instance.Pipeline.Concurrency}); err != nil {
		return err
	}
	handlers.RegisterSync(a.router, a.env) // notify runs in the api process, with the users
	return nil
}

// sharedBackend is the NATS backend for several processes: subscribers with the worker's ack
// wait, so the messages of a killed worker go to another one after it, and a publisher that
// publishes each stage output once across all workers.
type sharedBackend struct {
	*pipeline.NATSBackend
	nc  *nats.Conn
	pub *oncePublisher
}

func newSharedBackend(url string, ackWait time.Duration, logger *slog.Logger) (*sharedBackend, error) {
	nb, err := pipeline.NewNATSBackend(url, logger)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, nats.Name("analyst-worker-kv"))
	if err != nil {
		nb.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	js, err := nc.JetStream()
	var kv nats.KeyValue
	if err == nil {
		kv, err = js.KeyValue(publishedBucket)
		if errors.Is(err, nats.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(&nats.KeyValueConfig{Bucket: publishedBucket, TTL: publishedTTL, Storage: nats.FileStorage,
				Description: "stage outputs already published (run/table/topic)"})
		}
	}
	if err != nil {
		nc.Close()
		nb.Close()
		return nil, fmt.Errorf("nats: key-value bucket %s: %w", publishedBucket, err)
	}
	nb.AckWait = ackWait
	return &sharedBackend{NATSBackend: nb, nc: nc, pub: &oncePublisher{next: nb.Publisher(), kv: kv, log: logger}}, nil
}

func (b *sharedBackend) Publisher() message.Publisher { return b.pub }

func (b *sharedBackend) Close() error {
	b.nc.Close()
	return b.NATSBackend.Close()
}

// oncePublisher publishes a stage output (run, table, chunk, topic) once across workers. The
// message id is derived from that key, so JetStream drops a second publish within its duplicate
// window (a worker that crashed between publishing and acking); the key-value marker covers
// redeliveries after it. Triggers and poison records pass through unchanged.
type oncePublisher struct {
	next message.Publisher
	kv   nats.KeyValue
	log  *slog.Logger
}

var kvUnsafe = regexp.MustCompile(`[^-_=.a-zA-Z0-9]`)

func (p *oncePublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		run, table := m.Metadata.Get(pipeline.MetaRunID), m.Metadata.Get(pipeline.MetaTable)
		if topic == pipeline.TopicSyncRequested || strings.HasSuffix(topic, pipeline.FailedSuffix) ||
			strings.HasPrefix(topic, "poison.") || run == "" || m.Metadata.Get(pipeline.MetaReplayOf) != "" {
			if err := p.next.Publish(topic, m); err != nil {
				return err
			}
			continue
		}
		key := kvUnsafe.ReplaceAllString(strings.Join([]string{topic, run, table, m.Metadata.Get(pipeline.MetaChunk)}, "."), "_")
		key = strings.TrimSuffix(key, ".")
		if _, err := p.kv.Get(key); err == nil {
			p.log.Info("output already published by another worker; not publishing it again", "topic", topic, "run_id", run, "table", table)
			continue
		} else if !errors.Is(err, nats.ErrKeyNotFound) {
			return err
		}
		sum := sha256.Sum256([]byte(key))
		m.UUID = uuid.Must(uuid.FromBytes(sum[:16])).String()
		if err := p.next.Publish(topic, m); err != nil {
			return err
		}
		if _, err := p.kv.PutString(key, m.UUID); err != nil {
			return err
		}
	}
	return nil
}

func (p *oncePublisher) Close() error { return p.next.Close() }
