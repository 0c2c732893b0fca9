package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

// NATS backend: every topic is a subject of one JetStream stream with file storage; a consumer
// group is a durable queue consumer per topic.
const (
	natsStream = "ANALYST"
	// natsAckWait bounds how long a stage may hold a message before JetStream redelivers it.
	natsAckWait = 30 * time.Minute
)

// NATSBackend runs the pipeline on NATS JetStream.
type NATSBackend struct {
	// AckWait is how long a subscriber may hold a message before JetStream gives it to another
	// (default 30 minutes). Set it before the first subscription.
	AckWait time.Duration

	url    string
	logger watermill.LoggerAdapter
	pub    *wmnats.Publisher
	nc     *nats.Conn // for managing the consumers
	js     nats.JetStreamContext
}

// NewNATSBackend connects to url and makes sure the stream exists.
func NewNATSBackend(url string, logger *slog.Logger) (*NATSBackend, error) {
	if logger == nil {
		logger = slog.Default()
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.Name("analyst-admin"))
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s: %w", url, err)
	}
	js, err := nc.JetStream()
	if err == nil {
		err = ensureStream(js)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	wl := watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
		URL:               url,
		NatsOptions:       []nats.Option{nats.Name("analyst-publisher")},
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: natsSubject,
		JetStream:         wmnats.JetStreamConfig{TrackMsgId: true}, // dedup of a retried publish
	}, wl)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	return &NATSBackend{AckWait: natsAckWait, url: url, logger: wl, pub: pub, nc: nc, js: js}, nil
}

func ensureStream(js nats.JetStreamContext) error {
	info, err := js.StreamInfo(natsStream)
	switch {
	case errors.Is(err, nats.ErrStreamNotFound):
		_, err = js.AddStream(&nats.StreamConfig{
			Name:       natsStream,
			Subjects:   natsSubjects,
			Storage:    nats.FileStorage,
			Retention:  nats.LimitsPolicy,
			MaxAge:     30 * 24 * time.Hour,
			Duplicates: 10 * time.Minute,
		})
	case err == nil && !slices.Equal(info.Config.Subjects, natsSubjects):
		// A newer binary knows more topic roots: widen the existing stream.
		cfg := info.Config
		cfg.Subjects = natsSubjects
		_, err = js.UpdateStream(&cfg)
	}
	if err != nil {
		return fmt.Errorf("nats: stream %s: %w", natsStream, err)
	}
	return nil
}

// natsSubjects are the stream's subjects: the first token of every topic (watermill-nats
// publishes a message on the subject named like its topic).
var natsSubjects = []string{"sync.>", "table.>", "notify.>", "jira.>", "partition.>", "poison.>", "memory.>"}

func natsSubject(group, topic string) *wmnats.SubjectDetail {
	return &wmnats.SubjectDetail{Primary: topic, QueueGroup: natsDurable(group, topic)}
}

// natsDurable names a group's consumer of a topic; JetStream names cannot hold dots.
func natsDurable(group, subject string) string {
	return strings.NewReplacer(".", "_", "*", "_", ">", "_", " ", "_").Replace(group + "-" + subject)
}

// Publisher publishes to the stream.
func (b *NATSBackend) Publisher() message.Publisher { return b.pub }

// SubscriberWith returns a durable queue subscriber for group: members of a group, in this
// process or another, share its messages. Each process handles up to opts.Concurrency at once,
// one subscription each (the router keeps two of one key apart); opts.Concurrency is also the
// consumer's MaxAckPending, the limit across all processes.
func (b *NATSBackend) SubscriberWith(group string, opts SubscriberOptions) message.Subscriber {
	return &natsSubscriber{b: b, group: group, concurrency: max(opts.Concurrency, 1)}
}

// Close closes the publisher; subscribers are closed by the router.
func (b *NATSBackend) Close() error {
	err := b.pub.Close()
	b.nc.Close()
	return err
}

// natsSubscriber creates (or updates) its group's durable consumer of a topic itself and then
// binds to it. nats.go deletes a consumer that it created for a subscription when that
// subscription ends, so a consumer left to it would vanish at the first clean shutdown, and the
// next start would deliver the whole stream again. Created here, it outlives every process, and
// a changed pipeline.concurrency or ack wait updates it instead of failing the subscription.
type natsSubscriber struct {
	b           *NATSBackend
	group       string
	concurrency int

	mu   sync.Mutex
	subs []*wmnats.Subscriber
}

func (s *natsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	durable := natsDurable(s.group, topic)
	if err := s.b.ensureConsumer(durable, topic, s.concurrency); err != nil {
		return nil, err
	}
	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:               s.b.url,
		QueueGroupPrefix:  s.group,
		SubscribersCount:  s.concurrency,
		AckWaitTimeout:    s.b.AckWait,
		CloseTimeout:      30 * time.Second,
		NatsOptions:       []nats.Option{nats.Name("analyst-" + s.group)},
		Unmarshaler:       &wmnats.NATSMarshaler{},
		SubjectCalculator: natsSubject,
		JetStream: wmnats.JetStreamConfig{
			DurablePrefix:     s.group,
			DurableCalculator: natsDurable,
			SubscribeOptions:  []nats.SubOpt{nats.Bind(natsStream, durable)},
		},
	}, s.b.logger)
	if err != nil {
		return nil, fmt.Errorf("nats subscriber: %w", err)
	}
	s.mu.Lock()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	return sub.Subscribe(ctx, topic)
}

func (s *natsSubscriber) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, sub := range s.subs {
		errs = append(errs, sub.Close())
	}
	return errors.Join(errs...)
}

// Lag counts, up to limit, the messages of topic that group has not acknowledged across all
// processes: those not yet delivered and those delivered but unacked. Before the group's
// consumer exists, every message of the topic in the stream waits for it.
func (b *NATSBackend) Lag(group, topic string, limit int) (int, error) {
	info, err := b.js.ConsumerInfo(natsStream, natsDurable(group, topic))
	if errors.Is(err, nats.ErrConsumerNotFound) {
		si, err := b.js.StreamInfo(natsStream, &nats.StreamInfoRequest{SubjectsFilter: topic})
		if err != nil {
			return 0, err
		}
		return min(int(si.State.Subjects[topic]), limit), nil
	}
	if err != nil {
		return 0, err
	}
	return min(int(info.NumPending)+info.NumAckPending, limit), nil
}

// ensureConsumer makes the durable queue consumer of topic exist with the given limit of
// unacked messages and the backend's ack wait.
func (b *NATSBackend) ensureConsumer(durable, topic string, maxAckPending int) error {
	for attempt := 0; ; attempt++ {
		info, err := b.js.ConsumerInfo(natsStream, durable)
		switch {
		case errors.Is(err, nats.ErrConsumerNotFound):
			_, err = b.js.AddConsumer(natsStream, &nats.ConsumerConfig{
				Durable: durable, DeliverSubject: nats.NewInbox(), DeliverGroup: durable,
				DeliverPolicy: nats.DeliverAllPolicy, AckPolicy: nats.AckExplicitPolicy,
				AckWait: b.AckWait, MaxAckPending: maxAckPending, FilterSubject: topic,
			})
			if err != nil && attempt == 0 {
				continue // another process created it at the same moment: use theirs
			}
		case err == nil && (info.Config.MaxAckPending != maxAckPending || info.Config.AckWait != b.AckWait):
			cfg := info.Config
			cfg.MaxAckPending, cfg.AckWait = maxAckPending, b.AckWait
			_, err = b.js.UpdateConsumer(natsStream, &cfg)
		}
		if err != nil {
			return fmt.Errorf("nats: consumer %s: %w", durable, err)
		}
		return nil
	}
}
