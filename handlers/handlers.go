// Package handlers owns the pipeline's stages, one file each: ingest (source -> staged CSV),
// transform (CSV -> published Parquet), profile, publish and notify. Each stage is idempotent:
// it records its output per run and table, and a redelivered message repeats that output
// instead of doing the work again.
package handlers

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// Stage names; each is also the handler's consumer group.
const (
	StageIngest    = "ingest"
	StageTransform = "transform"
	StageProfile   = "profile"
	StagePublish   = "publish"
	StageNotify    = "notify"
)

// Env is what the stages work with.
type Env struct {
	Config   *config.Config
	Runs     *store.Runs
	Logger   *slog.Logger
	Progress *Progress
	Now      func() time.Time
	Scripts  ScriptQueue // analysts' notification scripts; nil: none

	mu      sync.Mutex
	sources map[string]connectors.Connector
	duck    *sql.DB
	pub     message.Publisher // for stages that publish more than one event (chunked loads)

	stateMu sync.Mutex // sync_state.json and schema files are rewritten whole
}

// NewEnv prepares the stages' environment.
func NewEnv(cfg *config.Config, runs *store.Runs, logger *slog.Logger) *Env {
	if logger == nil {
		logger = slog.Default()
	}
	return &Env{Config: cfg, Runs: runs, Logger: logger, Progress: NewProgress(), Now: time.Now, sources: map[string]connectors.Connector{}}
}

// Register adds every stage to the router.
func Register(r *pipeline.Router, env *Env) {
	RegisterSync(r, env)
	RegisterNotify(r, env)
}

// RegisterSync adds the stages that turn a sync request into a published table (what a
// scale-out worker runs).
func RegisterSync(r *pipeline.Router, env *Env) {
	env.pub = r.Publisher()
	r.Handle(StageIngest, pipeline.TopicSyncRequested, env.ingest)
	r.Handle(StageTransform, pipeline.TopicTableExtracted, env.transform)
	r.Handle(StageProfile, pipeline.TopicTableConverted, env.profile)
	r.Handle(StagePublish, pipeline.TopicTableProfiled, env.publish)
}

// RegisterNotify adds the notify stage, which runs where the users and their scripts are.
func RegisterNotify(r *pipeline.Router, env *Env) {
	r.Handle(StageNotify, pipeline.TopicTablePublished, env.notify)
}

// Source opens (once) the connector a table names.
func (e *Env) Source(name string) (connectors.Connector, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.sources[name]; ok {
		return c, nil
	}
	c, err := connectors.Open(name, e.Config.ConnectorSettings(name))
	if err != nil {
		return nil, pipeline.Permanent(fmt.Errorf("data source %s: %w", name, err))
	}
	e.sources[name] = c
	return c, nil
}

// table finds a configured table; an unknown one fails permanently.
func (e *Env) table(name string) (config.Table, error) {
	t, ok := e.Config.Catalogue.Table(name)
	if !ok {
		return t, pipeline.Permanent(fmt.Errorf("table %q is not in the catalogue", name))
	}
	return t, nil
}

// once runs a stage's work for a message's run and table unless it finished before, in which
// case the recorded output event is returned again (redelivery after a crash or a lost ack).
func once[E pipeline.Event](e *Env, stage string, msg *message.Message, work func() (E, error)) ([]pipeline.Event, error) {
	runID, table := msg.Metadata.Get(pipeline.MetaRunID), msg.Metadata.Get(pipeline.MetaTable)
	if chunk := msg.Metadata.Get(pipeline.MetaChunk); chunk != "" {
		stage += "#" + chunk
	}
	if raw, ok, err := e.Runs.StageOutput(runID, table, stage); err != nil {
		return nil, err
	} else if ok {
		var out E
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, pipeline.Permanent(fmt.Errorf("recorded %s output: %w", stage, err))
		}
		return []pipeline.Event{out}, nil
	}
	out, err := work()
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, pipeline.Permanent(err)
	}
	if err := e.Runs.RecordStageOutput(runID, table, stage, raw); err != nil {
		return nil, err
	}
	return []pipeline.Event{out}, nil
}

// TrackStage keeps the run records in step with the router's stage reports.
// Only the pipeline's own stages count: observers of the same events (such as the run
// projection of a scale-out api process) must not move a finished table back to running.
func (e *Env) TrackStage(ev pipeline.StageEvent) {
	if ev.RunID == "" || ev.Table == "" || !isStage(ev.Handler) {
		return
	}
	err := e.Runs.Update(ev.RunID, func(run *store.Run) {
		t := run.Table(ev.Table)
		s := t.Stage(ev.Handler)
		if !ev.Done {
			s.Started, s.Done, s.Error = ev.Started, false, ""
			// A table that failed stays failed while its other messages (say, an earlier chunk)
			// finish; only a replay of the failure makes it run again.
			if t.Status != store.RunFailed || ev.Replay {
				t.Status, t.Error = store.RunRunning, ""
			}
			return
		}
		s.Duration, s.Attempts = ev.Duration.Seconds(), ev.Attempts
		if ev.Err != nil {
			s.Error, t.Error, t.Status = ev.Err.Error(), ev.Err.Error(), store.RunFailed
			return
		}
		s.Done = true
		if ev.Handler == StageNotify {
			t.Status = store.RunSucceeded
		}
	})
	if err != nil {
		e.Logger.Error("cannot record run progress", "run_id", ev.RunID, "error", err)
	}
}

func isStage(name string) bool {
	switch name {
	case StageIngest, StageTransform, StageProfile, StagePublish, StageNotify:
		return true
	}
	return false
}

// Requeue is the hook for Replayer.Replay: it puts a replayed message's table back to queued
// before the message goes out, so whoever follows the run does not take the old failure for its
// end (the stages then move it on).
func Requeue(runs *store.Runs) func(pipeline.Poisoned) error {
	return func(p pipeline.Poisoned) error {
		if p.RunID == "" || p.Table == "" {
			return nil
		}
		return runs.Update(p.RunID, func(run *store.Run) { run.Table(p.Table).Status = store.RunQueued })
	}
}

// RequestSync records a queued run for tables and publishes one sync.requested per table.
func RequestSync(pub message.Publisher, runs *store.Runs, tables []string, trigger, by string, full bool) (string, error) {
	runID := watermill.NewULID()
	if _, err := runs.Create(runID, trigger, tables); err != nil {
		return "", err
	}
	for _, t := range tables {
		ev := pipeline.SyncRequested{Trigger: trigger, RequestedBy: by, Full: full}
		pipeline.Stamp(&ev.Header, runID, t)
		if err := pipeline.Publish(pub, ev); err != nil {
			return runID, err
		}
	}
	return runID, nil
}
