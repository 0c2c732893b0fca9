package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
)

// publish makes a profiled table's new version visible to analysts.
func (e *Env) publish(msg *message.Message) ([]pipeline.Event, error) {
	var in pipeline.TableProfiled
	if err := pipeline.Decode(msg, &in); err != nil {
		return nil, pipeline.Permanent(err)
	}
	return once(e, StagePublish, msg, func() (pipeline.TablePublished, error) {
		out := pipeline.TablePublished{Rows: in.Rows}
		pipeline.Stamp(&out.Header, in.RunID, in.Table)
		return out, nil
	})
}
