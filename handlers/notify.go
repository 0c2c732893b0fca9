package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
)

// notify tells the people and scripts that watch a table about its new version.
func (e *Env) notify(msg *message.Message) ([]pipeline.Event, error) {
	var in pipeline.TablePublished
	if err := pipeline.Decode(msg, &in); err != nil {
		return nil, pipeline.Permanent(err)
	}
	return once(e, StageNotify, msg, func() (pipeline.NotifyDelivered, error) {
		out := pipeline.NotifyDelivered{Skipped: "no subscribers"}
		pipeline.Stamp(&out.Header, in.RunID, in.Table)
		return out, nil
	})
}
