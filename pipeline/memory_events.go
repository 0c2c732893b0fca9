package pipeline

// Corporate memory topics. A collection is requested (on schedule, when an analyst pushes new
// notes, or by an admin), runs in one consumer, and reports what it did; every change of a
// knowledge item, by the collector or an admin, is an event too: the audit trail.
const (
	TopicMemoryCollectRequested = "memory.collect.requested"
	TopicMemoryCollected        = "memory.collect.done"
	TopicMemoryItemChanged      = "memory.item.changed"
)

// Triggers of a memory collection besides the sync triggers.
const TriggerNotes = "notes" // an analyst pushed a new CLAUDE.local.md

// MemoryCollectRequested asks for one collection run. Force ignores the per-user backoff.
type MemoryCollectRequested struct {
	Header
	Trigger     string `json:"trigger"`
	RequestedBy string `json:"requested_by,omitempty"`
	Force       bool   `json:"force,omitempty"`
}

func (MemoryCollectRequested) Topic() string { return TopicMemoryCollectRequested }

// MemoryCollected reports a collection run.
type MemoryCollected struct {
	Header
	Users    int      `json:"users"`             // users whose changed notes were sent
	Batches  int      `json:"batches"`           // model calls that distilled notes
	Created  int      `json:"created"`           // new items published
	Updated  int      `json:"updated"`           // existing items changed
	Held     int      `json:"held"`              // items held back for review
	Removed  int      `json:"removed"`           // items whose every source is gone
	Failed   []string `json:"failed,omitempty"`  // users whose batch failed (retried later, with backoff)
	Skipped  string   `json:"skipped,omitempty"` // why nothing was sent
	Deferred int      `json:"deferred,omitempty"`
}

func (MemoryCollected) Topic() string { return TopicMemoryCollected }

// MemoryItemChanged is one change of a knowledge item: the audit trail.
type MemoryItemChanged struct {
	Header
	ItemID string `json:"item_id"`
	Action string `json:"action"` // created, updated, held, removed, edited, approved, rejected, mandatory, optional
	By     string `json:"by"`     // "collector" or the admin's email
	Title  string `json:"title,omitempty"`
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (MemoryItemChanged) Topic() string { return TopicMemoryItemChanged }
