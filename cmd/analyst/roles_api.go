package main

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// followRuns keeps the api process's run records from the events workers publish: each
// stage's output marks the stage done, and a message on a stage's poison topic marks the
// table failed. (In one process the router's stage reports do this; here the stages run
// elsewhere.) The notify stage, which the api process runs itself, finishes the table.
func followRuns(r *pipeline.Router, runs *store.Runs) {
	outputs := map[string]string{
		pipeline.TopicTableExtracted: handlers.StageIngest,
		pipeline.TopicTableConverted: handlers.StageTransform,
		pipeline.TopicTableProfiled:  handlers.StageProfile,
		pipeline.TopicTablePublished: handlers.StagePublish,
	}
	for topic, stage := range outputs {
		r.Handle("runs-"+stage, topic, func(msg *message.Message) ([]pipeline.Event, error) {
			var out pipeline.TableConverted // rows, where the stage reports them
			pipeline.Decode(msg, &out)
			return nil, updateRun(runs, msg, func(t *store.RunTable) {
				t.Stage(stage).Done = true
				if stage == handlers.StageTransform {
					t.Rows = out.Rows
				}
				if t.Status == store.RunQueued { // never undo a failure or the notify stage's success
					t.Status = store.RunRunning
				}
			})
		})
	}
	inputs := map[string]string{
		pipeline.TopicSyncRequested:  handlers.StageIngest,
		pipeline.TopicTableExtracted: handlers.StageTransform,
		pipeline.TopicTableConverted: handlers.StageProfile,
		pipeline.TopicTableProfiled:  handlers.StagePublish,
	}
	for topic, stage := range inputs {
		r.Handle("runs-failed-"+stage, pipeline.FailedTopic(topic), func(msg *message.Message) ([]pipeline.Event, error) {
			reason := pipeline.PoisonReason(msg)
			return nil, updateRun(runs, msg, func(t *store.RunTable) {
				t.Stage(stage).Error, t.Error, t.Status = reason, reason, store.RunFailed
			})
		})
	}
}

func updateRun(runs *store.Runs, msg *message.Message, fn func(*store.RunTable)) error {
	runID, table := msg.Metadata.Get(pipeline.MetaRunID), msg.Metadata.Get(pipeline.MetaTable)
	if runID == "" || table == "" {
		return nil
	}
	return runs.Update(runID, func(run *store.Run) { fn(run.Table(table)) })
}
