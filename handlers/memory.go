package handlers

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
)

// StageMemory is the corporate memory collector's consumer group.
const StageMemory = "memory-collect"

// MemoryCollector runs one collection (package memory's Service). It records failed model calls
// as per-user backoff itself, so only a store error comes back as an error.
type MemoryCollector interface {
	Collect(ctx context.Context, req pipeline.MemoryCollectRequested) (pipeline.MemoryCollected, error)
}

// RegisterMemory consumes collection requests, one at a time (a run reads and rewrites the
// whole catalogue), and publishes what each run did.
func RegisterMemory(r *pipeline.Router, c MemoryCollector) {
	r.HandleWith(StageMemory, pipeline.TopicMemoryCollectRequested, pipeline.SubscriberOptions{Concurrency: 1},
		func(msg *message.Message) ([]pipeline.Event, error) {
			var req pipeline.MemoryCollectRequested
			if err := pipeline.Decode(msg, &req); err != nil {
				return nil, pipeline.Permanent(err)
			}
			out, err := c.Collect(msg.Context(), req)
			if err != nil {
				return nil, err
			}
			return []pipeline.Event{out}, nil
		})
}
