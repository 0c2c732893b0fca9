package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	url    string
	logger watermill.LoggerAdapter
	pub    *wmnats.Publisher
}

// NewNATSBackend connects to url and makes sure the stream exists.
func NewNATSBackend(url string, logger *slog.Logger) (*NATSBackend, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := ensureStream(url); err != nil {
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
		return nil, fmt.Errorf("nats: %w", err)
	}
	return &NATSBackend{url: url, logger: wl, pub: pub}, nil
}

func ensureStream(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("nats: connect %s: %w", url, err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
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
// one subscription each (the router keeps two of one key apart).
func (b *NATSBackend) SubscriberWith(group string, opts SubscriberOptions) message.Subscriber {
	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:               b.url,
		QueueGroupPrefix:  group,
		SubscribersCount:  max(opts.Concurrency, 1),
		AckWaitTimeout:    natsAckWait,
		CloseTimeout:      30 * time.Second,
		NatsOptions:       []nats.Option{nats.Name("analyst-" + group)},
		Unmarshaler:       &wmnats.NATSMarshaler{},
		SubjectCalculator: natsSubject,
		JetStream: wmnats.JetStreamConfig{
			DurablePrefix:     group,
			DurableCalculator: natsDurable,
			SubscribeOptions: []nats.SubOpt{
				nats.DeliverAll(), nats.AckExplicit(), nats.AckWait(natsAckWait),
				nats.MaxAckPending(max(opts.Concurrency, 1)), nats.BindStream(natsStream),
			},
		},
	}, b.logger)
	if err != nil {
		return errSubscriber{err}
	}
	return sub
}

// Close closes the publisher; subscribers are closed by the router.
func (b *NATSBackend) Close() error { return b.pub.Close() }

// errSubscriber reports a subscriber that could not be created at its first Subscribe.
type errSubscriber struct{ err error }

func (e errSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return nil, fmt.Errorf("nats subscriber: %w", e.err)
}
func (e errSubscriber) Close() error { return nil }
