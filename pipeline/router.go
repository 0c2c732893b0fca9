package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// Backend is where the event log lives: the embedded bbolt log or NATS JetStream.
type Backend interface {
	Publisher() message.Publisher
	SubscriberWith(group string, opts SubscriberOptions) message.Subscriber
	Close() error
}

// Lagger is a backend that can tell how far a consumer group is behind on a topic: the
// messages not yet acknowledged, counted up to limit.
type Lagger interface {
	Lag(group, topic string, limit int) (int, error)
}

// HandlerFunc is one pipeline stage: it handles a message and returns the events it produced,
// which the router publishes before the message is acked.
type HandlerFunc func(msg *message.Message) ([]Event, error)

// RouterConfig tunes retries and concurrency of every handler.
type RouterConfig struct {
	Logger          *slog.Logger
	MaxRetries      int           // attempts after the first; default 3
	InitialInterval time.Duration // first backoff; default 500ms, doubled each retry
	MaxInterval     time.Duration // default 30s
	Concurrency     int           // messages in flight per handler (different tables); default 4
	OnStage         func(StageEvent)
}

// StageEvent reports a handler starting or finishing a message (for run tracking and metrics).
type StageEvent struct {
	Handler  string
	Topic    string
	RunID    string
	Table    string
	Started  time.Time
	Done     bool
	Duration time.Duration
	Attempts int
	Err      error // set when Done and the message failed for good
	Replay   bool  // the message is a replay of a failed one
}

// Router runs the pipeline's handlers on a backend.
type Router struct {
	*message.Router
	backend Backend
	pub     message.Publisher
	cfg     RouterConfig
}

// permanent marks errors that retrying cannot fix (bad config, unknown table).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent wraps err so the router sends the message to the poison topic without retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// NewRouter builds a router with the standard middleware on backend.
func NewRouter(b Backend, cfg RouterConfig) (*Router, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 3
	}
	if cfg.InitialInterval == 0 {
		cfg.InitialInterval = 500 * time.Millisecond
	}
	if cfg.MaxInterval == 0 {
		cfg.MaxInterval = 30 * time.Second
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	wr, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Minute}, watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return nil, err
	}
	return &Router{Router: wr, backend: b, pub: b.Publisher(), cfg: cfg}, nil
}

// Publisher publishes to the router's backend.
func (r *Router) Publisher() message.Publisher { return r.pub }

// Handle registers a stage named name (also its consumer group) that consumes topic.
func (r *Router) Handle(name, topic string, fn HandlerFunc) {
	r.HandleWith(name, topic, SubscriberOptions{}, fn)
}

// HandleWith is Handle with the consumer group's delivery options, e.g. a Key that serializes
// messages by something else than their table. Concurrency 0 means the router's default.
func (r *Router) HandleWith(name, topic string, opts SubscriberOptions, fn HandlerFunc) {
	if opts.Concurrency == 0 {
		opts.Concurrency = r.cfg.Concurrency
	}
	sub := r.backend.SubscriberWith(name, opts)
	if opts.Concurrency > 1 {
		fn = oneAtATimePerKey(opts.key(), fn)
	}
	h := r.AddConsumerHandler(name, topic, sub, func(msg *message.Message) error {
		return r.publishResults(msg, fn)
	})
	// Outermost first. Retries run inside the poison middleware, so only a message that
	// failed every attempt (or permanently) reaches the poison topic. The poison record is
	// written before the failure is reported: a run shown failed can be retried at once.
	h.AddMiddleware(
		r.onlyForTarget,
		ackPoisoned,
		r.reportStage,
		r.poisonQueue,
		r.retry,
		countAttempts,
		middleware.Recoverer,
	)
}

// publishResults runs the stage and publishes its events (each to its own topic) before the
// message is acked; a redelivered message may publish them again, so stages are idempotent.
func (r *Router) publishResults(msg *message.Message, fn HandlerFunc) error {
	events, err := fn(msg)
	if err != nil {
		return err
	}
	correlation := msg.Metadata.Get(metadataCorrelationID)
	if correlation == "" {
		correlation = msg.Metadata.Get(metadataRunID)
	}
	for _, e := range events {
		out, err := NewMessage(e)
		if err != nil {
			return Permanent(err)
		}
		out.Metadata.Set(metadataCorrelationID, correlation)
		if err := r.pub.Publish(e.Topic(), out); err != nil {
			return err
		}
	}
	return nil
}

// onlyForTarget acks, without handling, a replay meant for another consumer of the topic.
func (r *Router) onlyForTarget(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if only := msg.Metadata.Get(metadataOnlyHandler); only != "" && only != message.HandlerNameFromCtx(msg.Context()) {
			return nil, nil
		}
		return h(msg)
	}
}

// retry runs the handler again after an error, with exponential backoff and jitter, until it
// succeeds, fails permanently, the retries run out or the message's context ends. (Watermill's
// Retry middleware advances its backoff twice per attempt when ShouldRetry is set, so a failing
// table would wait 1+4+16 s instead of 0.5+1+2 s.)
func (r *Router) retry(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		interval := r.cfg.InitialInterval
		for attempt := 0; ; attempt++ {
			produced, err := h(msg)
			var perm permanent
			if err == nil || errors.As(err, &perm) || attempt >= r.cfg.MaxRetries {
				return produced, err
			}
			wait := interval/2 + rand.N(interval/2+1)
			select {
			case <-time.After(wait):
			case <-msg.Context().Done():
				return produced, err
			}
			interval = min(2*interval, r.cfg.MaxInterval)
		}
	}
}

type attemptsKey struct{}

// countAttempts counts how often the handler ran for a message (read by poison and stage reports).
func countAttempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if n, ok := msg.Context().Value(attemptsKey{}).(*int); ok {
			*n++
		}
		return h(msg)
	}
}

func attemptsOf(msg *message.Message) int {
	if n, ok := msg.Context().Value(attemptsKey{}).(*int); ok {
		return *n
	}
	return 0
}

// poisonQueue records a message that failed for good on "<topic>.failed" and returns its error
// marked poisoned, which ackPoisoned acks. While the router shuts down the message is nacked
// instead, to be handled after a restart.
func (r *Router) poisonQueue(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		msg.SetContext(context.WithValue(msg.Context(), attemptsKey{}, new(int)))
		produced, err := h(msg)
		if err == nil || msg.Context().Err() != nil {
			return produced, err
		}
		handler, topic := message.HandlerNameFromCtx(msg.Context()), message.SubscribeTopicFromCtx(msg.Context())
		if perr := r.poison(handler, topic, msg, err, attemptsOf(msg)); perr != nil {
			return nil, fmt.Errorf("%w (and the poison topic is unavailable: %v)", err, perr)
		}
		return nil, poisoned{err}
	}
}

// poisoned is the error of a message already recorded on its poison topic.
type poisoned struct{ error }

func (p poisoned) Unwrap() error { return p.error }

// ackPoisoned acks a message whose failure is on its poison topic.
func ackPoisoned(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		produced, err := h(msg)
		if errors.As(err, new(poisoned)) {
			return nil, nil
		}
		return produced, err
	}
}

// reportStage logs each message's outcome and reports it to OnStage.
func (r *Router) reportStage(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ev := StageEvent{
			Handler: message.HandlerNameFromCtx(msg.Context()), Topic: message.SubscribeTopicFromCtx(msg.Context()),
			RunID: msg.Metadata.Get(metadataRunID), Table: msg.Metadata.Get(metadataTable), Started: time.Now(),
			Replay: msg.Metadata.Get(metadataReplayOf) != "",
		}
		r.stage(ev)
		produced, err := h(msg)
		ev.Done, ev.Duration, ev.Attempts, ev.Err = true, time.Since(ev.Started), attemptsOf(msg), err
		log := r.cfg.Logger.With("handler", ev.Handler, "run_id", ev.RunID, "table", ev.Table, "duration", ev.Duration, "attempts", ev.Attempts)
		if err != nil && msg.Context().Err() == nil {
			log.Error("failed for good; sent to poison topic", "error", err)
		} else if err == nil {
			log.Debug("handled")
		}
		r.stage(ev)
		return produced, err
	}
}

func (r *Router) stage(ev StageEvent) {
	if r.cfg.OnStage != nil {
		r.cfg.OnStage(ev)
	}
}

// poison records a message that failed for good on the handler's poison topic.
func (r *Router) poison(handler, topic string, msg *message.Message, cause error, attempts int) error {
	p := message.NewMessage(watermill.NewUUID(), msg.Payload)
	for k, v := range msg.Metadata {
		p.Metadata.Set(k, v)
	}
	p.Metadata.Set(metadataPoisonReason, cause.Error())
	p.Metadata.Set(metadataPoisonedTopic, topic)
	p.Metadata.Set(metadataPoisonedHandler, handler)
	p.Metadata.Set(metadataAttempts, strconv.Itoa(attempts))
	p.Metadata.Set(metadataFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	p.Metadata.Set(metadataOriginalUUID, msg.UUID)
	return r.pub.Publish(FailedTopic(topic), p)
}

// oneAtATimePerKey runs fn for at most one message of each key at a time. The bbolt log's
// dispatcher already hands out no two messages of one key at once; JetStream delivers to
// several subscriptions of a process with no notion of key, so there this lock is what keeps
// e.g. two rewrites of one month apart. (Across processes no order holds: stages are idempotent
// and read the current state.)
func oneAtATimePerKey(key func(message.Metadata) string, fn HandlerFunc) HandlerFunc {
	var mu sync.Mutex
	locks := map[string]*keyLock{}
	return func(msg *message.Message) ([]Event, error) {
		k := key(msg.Metadata)
		mu.Lock()
		l := locks[k]
		if l == nil {
			l = &keyLock{}
			locks[k] = l
		}
		l.users++
		mu.Unlock()
		l.Lock()
		defer func() {
			l.Unlock()
			mu.Lock()
			if l.users--; l.users == 0 {
				delete(locks, k)
			}
			mu.Unlock()
		}()
		return fn(msg)
	}
}

type keyLock struct {
	sync.Mutex
	users int // messages holding or waiting for it
}
