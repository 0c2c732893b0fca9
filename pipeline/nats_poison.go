package pipeline

import (
	"errors"
	"slices"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats.go"
)

// PoisonLog is the stream seen as a Replayer's log, so that failed messages of a scale-out
// can be listed and retried as on one machine.
func (b *NATSBackend) PoisonLog() PoisonLog { return natsPoisonLog{b} }

type natsPoisonLog struct{ b *NATSBackend }

// Topics lists the stream's subjects that hold messages (a topic is its subject).
func (l natsPoisonLog) Topics() ([]string, error) {
	info, err := l.b.js.StreamInfo(natsStream, &nats.StreamInfoRequest{SubjectsFilter: ">"})
	if err != nil {
		return nil, err
	}
	var topics []string
	for subject := range info.State.Subjects {
		topics = append(topics, subject)
	}
	slices.Sort(topics)
	return topics, nil
}

// Read reads a subject's messages with an ordered consumer, from stream sequence after+1.
func (l natsPoisonLog) Read(topic string, after uint64, limit int) ([]Record, error) {
	info, err := l.b.js.StreamInfo(natsStream, &nats.StreamInfoRequest{SubjectsFilter: topic})
	if err != nil {
		return nil, err
	}
	if info.State.Subjects[topic] == 0 || after >= info.State.LastSeq {
		return nil, nil // nothing to wait for
	}
	sub, err := l.b.js.SubscribeSync(topic, nats.OrderedConsumer(), nats.StartSequence(after+1), nats.BindStream(natsStream))
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	var recs []Record
	unmarshal := wmnats.NATSMarshaler{}
	for limit <= 0 || len(recs) < limit {
		m, err := sub.NextMsg(2 * time.Second)
		if errors.Is(err, nats.ErrTimeout) {
			break // nothing (more) on the subject
		}
		if err != nil {
			return nil, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		msg, err := unmarshal.Unmarshal(m)
		if err != nil {
			return nil, err
		}
		recs = append(recs, Record{Topic: topic, Seq: meta.Sequence.Stream, Time: meta.Timestamp, UUID: msg.UUID, Metadata: msg.Metadata, Payload: msg.Payload})
		if meta.NumPending == 0 {
			break
		}
	}
	return recs, nil
}

// PublishAtomic publishes the entries in order. JetStream has no transaction, but each entry
// keeps its message id (the stream's de-duplication key), so a replay interrupted between
// them and done again within the duplicate window publishes nothing twice.
func (l natsPoisonLog) PublishAtomic(entries ...TopicMessage) error {
	for _, e := range entries {
		if err := l.b.pub.Publish(e.Topic, e.Message); err != nil {
			return err
		}
	}
	return nil
}
