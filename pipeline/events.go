package pipeline

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Topics of the pipeline. A handler's failures go to "<its input topic>.failed".
const (
	TopicSyncRequested    = "sync.requested"
	TopicTableExtracted   = "table.extracted"
	TopicTableConverted   = "table.converted"
	TopicTableProfiled    = "table.profiled"
	TopicTablePublished   = "table.published"
	TopicNotifyDelivered  = "notify.delivered"
	TopicJiraWebhook      = "jira.webhook.received"
	TopicJiraIssueFetched = "jira.issue.fetched"
	TopicPoisonReplayed   = "poison.replayed" // one marker per replayed poison message
	FailedSuffix          = ".failed"
)

// currentEventVersion is the version this binary writes; older events still decode.
const currentEventVersion = 1

// Metadata keys a message carries; exported for handlers and the CLI.
const (
	MetaRunID    = "run_id"
	MetaTable    = "table"
	MetaReplayOf = "replay_of"
	MetaChunk    = "chunk" // index of a chunk of a chunked initial load
)

// Metadata keys of poison messages and replays.
const (
	metadataRunID           = MetaRunID
	metadataTable           = MetaTable
	metadataReplayOf        = MetaReplayOf
	metadataCorrelationID   = "correlation_id"
	metadataAttempts        = "attempts"
	metadataFailedAt        = "failed_at"
	metadataPoisonedHandler = "handler_poisoned"
	metadataPoisonedTopic   = "topic_poisoned"
	metadataPoisonReason    = "reason_poisoned"
	metadataOriginalUUID    = "original_uuid"
	metadataOnlyHandler     = "only_handler"
)

// FailedTopic is the poison topic of a handler that consumes topic.
func FailedTopic(topic string) string { return topic + FailedSuffix }

// Triggers of a sync run.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
	TriggerWebhook  = "webhook"
	TriggerWatch    = "watch"
	TriggerStartup  = "startup"
)

// Event is implemented by every event type: it names its topic and carries run and table.
type Event interface {
	Topic() string
	Run() string
	TableName() string
}

// Header is embedded in every event. Version lets old events in the log still decode after
// their struct gains fields.
type Header struct {
	Version int       `json:"version"`
	RunID   string    `json:"run_id"`
	Table   string    `json:"table"`
	Time    time.Time `json:"time"`
}

func (h Header) Run() string       { return h.RunID }
func (h Header) TableName() string { return h.Table }

// SyncRequested asks for one table to be synced.
type SyncRequested struct {
	Header
	Trigger     string `json:"trigger"`
	RequestedBy string `json:"requested_by,omitempty"`
	Full        bool   `json:"full,omitempty"` // ignore incremental state and reload everything
}

func (SyncRequested) Topic() string { return TopicSyncRequested }

// TableExtracted says the source rows are staged as CSV.
type TableExtracted struct {
	Header
	Files        []string          `json:"files"`
	Format       json.RawMessage   `json:"format"`  // store.CSVFormat
	Columns      json.RawMessage   `json:"columns"` // []store.Column
	Temporary    bool              `json:"temporary"`
	Bytes        int64             `json:"bytes"`
	ChangedSince *time.Time        `json:"changed_since,omitempty"`
	Chunk        *Chunk            `json:"chunk,omitempty"`
	Extra        map[string]string `json:"extra,omitempty"`
}

// Chunk places an extract inside a chunked initial load.
type Chunk struct {
	Index int       `json:"index"`
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	Last  bool      `json:"last"`
}

func (TableExtracted) Topic() string { return TopicTableExtracted }

func (e TableExtracted) chunk() *Chunk { return e.Chunk }

// TableConverted says the table's Parquet files were written and are in place.
type TableConverted struct {
	Header
	Path       string    `json:"path"` // file or partition folder, relative to the Parquet root
	Rows       int64     `json:"rows"`
	Columns    int       `json:"columns"`
	Bytes      int64     `json:"bytes"`
	Partitions []string  `json:"partitions,omitempty"` // touched partition keys
	Warnings   []Warning `json:"warnings,omitempty"`
	Source     string    `json:"source,omitempty"` // "sync" or "jira"
	Chunk      *Chunk    `json:"chunk,omitempty"`  // set while a chunked initial load is in progress
}

func (e TableConverted) chunk() *Chunk { return e.Chunk }

// chunked events carry their chunk index in the message metadata, so that each chunk of a
// table in one run is a separate unit of work.
type chunked interface{ chunk() *Chunk }

// Warning is a counted data problem found while converting.
type Warning struct {
	Column   string `json:"column"`
	Count    int64  `json:"count"`
	FirstRow int64  `json:"first_row"`
	Example  string `json:"example"`
	Reason   string `json:"reason"`
}

func (TableConverted) Topic() string { return TopicTableConverted }

// TableProfiled says the catalog entry of the table is up to date (or Stale if profiling failed).
type TableProfiled struct {
	Header
	Rows  int64  `json:"rows"`
	Stale bool   `json:"stale,omitempty"`
	Error string `json:"error,omitempty"`
}

func (TableProfiled) Topic() string { return TopicTableProfiled }

// TablePublished says analysts can pull the table's new version.
type TablePublished struct {
	Header
	ManifestVersion uint64 `json:"manifest_version"`
	Files           int    `json:"files"`
	Rows            int64  `json:"rows"`
}

func (TablePublished) Topic() string { return TopicTablePublished }

// NotifyDelivered records what the notify stage did for a published table.
type NotifyDelivered struct {
	Header
	Notified []string `json:"notified,omitempty"` // recipients or channels reached
	Skipped  string   `json:"skipped,omitempty"`
}

func (NotifyDelivered) Topic() string { return TopicNotifyDelivered }

// NewMessage encodes an event as a message carrying run id and table in its metadata.
func NewMessage(e Event) (*message.Message, error) {
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", e.Topic(), err)
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(metadataRunID, e.Run())
	msg.Metadata.Set(metadataTable, e.TableName())
	if c, ok := e.(chunked); ok && c.chunk() != nil {
		msg.Metadata.Set(MetaChunk, strconv.Itoa(c.chunk().Index))
	}
	return msg, nil
}

// Stamp fills the header fields an event needs before it is published.
func Stamp(h *Header, runID, table string) {
	h.Version = currentEventVersion
	h.RunID = runID
	h.Table = table
	h.Time = time.Now().UTC()
}

// Decode reads an event payload into e and checks its version.
func Decode(msg *message.Message, e any) error {
	if err := json.Unmarshal(msg.Payload, e); err != nil {
		return fmt.Errorf("decode event %s: %w", msg.UUID, err)
	}
	var h struct {
		Version int `json:"version"`
	}
	json.Unmarshal(msg.Payload, &h)
	if h.Version > currentEventVersion {
		return fmt.Errorf("event %s has version %d, newer than this binary understands (%d)", msg.UUID, h.Version, currentEventVersion)
	}
	return nil
}

// Publish encodes and publishes events.
func Publish(pub message.Publisher, events ...Event) error {
	for _, e := range events {
		msg, err := NewMessage(e)
		if err != nil {
			return err
		}
		if err := pub.Publish(e.Topic(), msg); err != nil {
			return err
		}
	}
	return nil
}
