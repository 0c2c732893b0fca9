package pipeline

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Poisoned is a message that failed for good, as recorded on a poison topic.
type Poisoned struct {
	Record
	Handler  string    `json:"handler"`
	Topic    string    `json:"topic"` // where it came from and where a replay goes
	Reason   string    `json:"error"`
	Attempts int       `json:"attempts"`
	RunID    string    `json:"run_id"`
	Table    string    `json:"table"`
	FailedAt time.Time `json:"failed_at"`
	Replayed bool      `json:"replayed"`
}

// Replayer lists poison messages and publishes them again. A replay is recorded on
// TopicPoisonReplayed, so a poison message is replayed at most once.
type Replayer struct {
	log PoisonLog
	mu  sync.Mutex
}

// PoisonLog is where a Replayer reads the poison topics and publishes a replay with its
// marker: the bbolt log, or the JetStream stream (NATSBackend.PoisonLog).
type PoisonLog interface {
	Topics() ([]string, error)
	// Read returns a topic's messages after seq after, at most limit (0: all).
	Read(topic string, after uint64, limit int) ([]Record, error)
	// PublishAtomic publishes the replay and its marker, both or (as far as the log can
	// promise) neither.
	PublishAtomic(entries ...TopicMessage) error
}

// NewReplayer replays from log.
func NewReplayer(log PoisonLog) *Replayer { return &Replayer{log: log} }

// List returns poison messages, oldest first; with pending only, those not yet replayed.
func (r *Replayer) List(pending bool) ([]Poisoned, error) {
	replayed, err := r.replayed()
	if err != nil {
		return nil, err
	}
	topics, err := r.log.Topics()
	if err != nil {
		return nil, err
	}
	var out []Poisoned
	for _, topic := range topics {
		if !strings.HasSuffix(topic, FailedSuffix) {
			continue
		}
		recs, err := r.log.Read(topic, 0, 0)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			p := poisonedFrom(rec)
			p.Replayed = replayed[rec.UUID]
			if !pending || !p.Replayed {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

func poisonedFrom(rec Record) Poisoned {
	md := rec.Metadata
	attempts, _ := strconv.Atoi(md.Get(metadataAttempts))
	failedAt, _ := time.Parse(time.RFC3339Nano, md.Get(metadataFailedAt))
	topic := md.Get(metadataPoisonedTopic)
	if topic == "" {
		topic = strings.TrimSuffix(rec.Topic, FailedSuffix)
	}
	return Poisoned{
		Record: rec, Handler: md.Get(metadataPoisonedHandler), Topic: topic, Reason: md.Get(metadataPoisonReason),
		Attempts: attempts, RunID: md.Get(metadataRunID), Table: md.Get(metadataTable), FailedAt: failedAt,
	}
}

func (r *Replayer) replayed() (map[string]bool, error) {
	recs, err := r.log.Read(TopicPoisonReplayed, 0, 0)
	if err != nil {
		return nil, err
	}
	done := make(map[string]bool, len(recs))
	for _, rec := range recs {
		done[rec.Metadata.Get(metadataReplayOf)] = true
	}
	return done, nil
}

// Replay re-publishes the pending poison messages that match (nil: all) to the topic they
// failed on, addressed to the handler that failed, and returns what it replayed. before, when
// set, runs for each message just before it is published (to mark its run as queued again).
func (r *Replayer) Replay(match func(Poisoned) bool, before func(Poisoned) error) ([]Poisoned, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pending, err := r.List(true)
	if err != nil {
		return nil, err
	}
	var done []Poisoned
	for _, p := range pending {
		if match != nil && !match(p) {
			continue
		}
		if before != nil {
			if err := before(p); err != nil {
				return done, err
			}
		}
		if err := r.replayOne(p); err != nil {
			return done, err
		}
		done = append(done, p)
	}
	return done, nil
}

func (r *Replayer) replayOne(p Poisoned) error {
	// Ids derived from the poison message: a replay published again (JetStream has no
	// transaction) is dropped by the stream's de-duplication.
	msg := message.NewMessage("replay-"+p.UUID, p.Payload)
	for k, v := range p.Metadata {
		switch k {
		case metadataPoisonReason, metadataPoisonedTopic, metadataPoisonedHandler, metadataAttempts, metadataFailedAt, metadataOriginalUUID:
		default:
			msg.Metadata.Set(k, v)
		}
	}
	msg.Metadata.Set(metadataReplayOf, p.UUID)
	if p.Handler != "" {
		msg.Metadata.Set(metadataOnlyHandler, p.Handler)
	}
	marker := message.NewMessage("replayed-"+p.UUID, nil)
	marker.Metadata.Set(metadataReplayOf, p.UUID)
	marker.Metadata.Set(metadataRunID, p.RunID)
	marker.Metadata.Set(metadataTable, p.Table)
	// One transaction: the replay and its marker are durable together or not at all.
	if err := r.log.PublishAtomic(TopicMessage{p.Topic, msg}, TopicMessage{TopicPoisonReplayed, marker}); err != nil {
		return fmt.Errorf("replay %s: %w", p.UUID, err)
	}
	return nil
}

// PoisonReason is the error recorded with a poison message.
func PoisonReason(msg *message.Message) string { return msg.Metadata.Get(metadataPoisonReason) }
