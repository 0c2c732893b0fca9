package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
)

// profile refreshes the catalog entry of a converted table.
func (e *Env) profile(msg *message.Message) ([]pipeline.Event, error) {
	var in pipeline.TableConverted
	if err := pipeline.Decode(msg, &in); err != nil {
		return nil, pipeline.Permanent(err)
	}
	if in.Chunk != nil && !in.Chunk.Last {
		return nil, nil // profiled once the whole first load is in
	}
	return once(e, StageProfile, msg, func() (pipeline.TableProfiled, error) {
		out := pipeline.TableProfiled{Rows: in.Rows}
		pipeline.Stamp(&out.Header, in.RunID, in.Table)
		return out, nil
	})
}
