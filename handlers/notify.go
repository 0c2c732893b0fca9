package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
)

// ScriptQueue queues runs of the analysts' scripts that declare a dependency on a table (package
// notify). Request ids derive from the run and table, so queueing again after a redelivery
// runs nothing twice.
type ScriptQueue interface {
	QueueForTable(runID, table string) ([]string, error)
}

// notify queues the scripts that watch the published table; they run, and deliver what they
// report, in their own consumer (notify.script.requested), so a slow script never holds up the
// pipeline. Notified lists the queued "user/script" runs.
func (e *Env) notify(msg *message.Message) ([]pipeline.Event, error) {
	var in pipeline.TablePublished
	if err := pipeline.Decode(msg, &in); err != nil {
		return nil, pipeline.Permanent(err)
	}
	return once(e, StageNotify, msg, func() (pipeline.NotifyDelivered, error) {
		out := pipeline.NotifyDelivered{}
		pipeline.Stamp(&out.Header, in.RunID, in.Table)
		if e.Scripts != nil {
			queued, err := e.Scripts.QueueForTable(in.RunID, in.Table)
			if err != nil {
				return out, err
			}
			out.Notified = queued
		}
		if len(out.Notified) == 0 {
			out.Skipped = "no subscribers"
		}
		return out, nil
	})
}
