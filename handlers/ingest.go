package handlers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// ingest extracts a requested table from its source into the run's staging folder.
func (e *Env) ingest(msg *message.Message) ([]pipeline.Event, error) {
	var req pipeline.SyncRequested
	if err := pipeline.Decode(msg, &req); err != nil {
		return nil, pipeline.Permanent(err)
	}
	t, err := e.table(req.Table)
	if err != nil {
		return nil, err
	}
	if !t.Synced() {
		return nil, pipeline.Permanent(fmt.Errorf("table %s is written by the Jira webhooks, not synced (see `analyst jira backfill`)", t.Name))
	}
	if e.chunkedLoad(t, req.Full) {
		return nil, e.ingestChunks(msg, req, t)
	}
	return once(e, StageIngest, msg, func() (pipeline.TableExtracted, error) {
		var since time.Time
		if !req.Full {
			since = e.changedSince(t)
		}
		return e.extract(msg, req.RunID, t, since, time.Time{})
	})
}

// extract runs the table's connector for one change window and describes the staged files.
func (e *Env) extract(msg *message.Message, runID string, t config.Table, since, until time.Time) (pipeline.TableExtracted, error) {
	var out pipeline.TableExtracted
	src, err := e.Source(t.Source)
	if err != nil {
		return out, err
	}
	staging := filepath.Join(e.Config.Paths.Staging, runID)
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return out, err
	}
	var downloaded int64
	xr := connectors.ExtractRequest{
		Table: t, StagingDir: staging, ChangedSince: since, ChangedUntil: until,
		Progress: func(n int64) {
			e.Progress.Set(runID, t.Name, func(p *TableProgress) { downloaded += n; p.Stage, p.Bytes = StageIngest, downloaded })
		},
	}
	e.Progress.Set(runID, t.Name, func(p *TableProgress) { p.Stage, p.Bytes, p.Rows = StageIngest, 0, 0 })
	x, err := src.Extract(msg.Context(), xr)
	if err != nil {
		return out, err
	}
	pipeline.Stamp(&out.Header, runID, t.Name)
	out.Files, out.Temporary = x.Files, x.Temporary
	if out.Format, err = json.Marshal(x.Format); err != nil {
		return out, err
	}
	if out.Columns, err = json.Marshal(x.Columns); err != nil {
		return out, err
	}
	for _, f := range x.Files {
		if fi, err := os.Stat(f); err == nil {
			out.Bytes += fi.Size()
		}
	}
	if !since.IsZero() {
		out.ChangedSince = &since
	}
	return out, nil
}

// chunkedLoad says whether the table's next sync is a chunked first load: an incremental,
// partitioned table with a bounded history and nothing synced yet (or a forced full sync).
// An unbounded first load is one full export: the original's "stop after two empty chunks"
// lost all history behind a gap.
func (e *Env) chunkedLoad(t config.Table, full bool) bool {
	if t.SyncStrategy != config.Incremental || t.PartitionBy == "" || t.MaxHistoryDays <= 0 {
		return false
	}
	if _, inProgress, _ := e.Runs.InitialLoad(t.ID); inProgress {
		return true
	}
	_, synced := e.lastSync(t)
	return full || !synced
}

// ingestChunks extracts the first load backwards in chunks of initial_load_chunk_days with a
// one-day overlap, publishing each chunk as it is staged and recording progress per table.
func (e *Env) ingestChunks(msg *message.Message, req pipeline.SyncRequested, t config.Table) error {
	load, found, err := e.Runs.InitialLoad(t.ID)
	if err != nil {
		return err
	}
	size := max(t.InitialLoadChunkDays, 1)
	if !found {
		load = store.InitialLoad{Anchor: e.Now().UTC(), Chunks: (t.MaxHistoryDays + size - 1) / size}
	}
	oldest := load.Anchor.AddDate(0, 0, -t.MaxHistoryDays)
	for i := load.Next; i < load.Chunks; i++ {
		var until time.Time // the newest chunk is open-ended
		if i > 0 {
			until = load.Anchor.AddDate(0, 0, -i*size)
		}
		since := load.Anchor.AddDate(0, 0, -(i*size + size + 1))
		if since.Before(oldest) {
			since = oldest
		}
		out, err := e.extract(msg, req.RunID, t, since, until)
		if err != nil {
			return err
		}
		out.Chunk = &pipeline.Chunk{Index: i, From: since, Until: until, Last: i == load.Chunks-1}
		if err := pipeline.Publish(e.pub, out); err != nil {
			return err
		}
		load.Next = i + 1
		if err := e.Runs.SetInitialLoad(t.ID, &load); err != nil {
			return err
		}
	}
	return nil
}

// changedSince is the lower bound of an incremental export: the last sync minus the table's
// window, or max_history_days back on a first load; zero means everything.
func (e *Env) changedSince(t config.Table) time.Time {
	if t.SyncStrategy != config.Incremental {
		return time.Time{}
	}
	if last, ok := e.lastSync(t); ok {
		return last.AddDate(0, 0, -t.IncrementalWindowDays)
	}
	if t.MaxHistoryDays > 0 {
		return e.Now().UTC().AddDate(0, 0, -t.MaxHistoryDays)
	}
	return time.Time{}
}
