package handlers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/pipeline"
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
	return once(e, StageIngest, msg, func() (pipeline.TableExtracted, error) {
		var out pipeline.TableExtracted
		src, err := e.Source(t.Source)
		if err != nil {
			return out, err
		}
		staging := filepath.Join(e.Config.Paths.Staging, req.RunID)
		if err := os.MkdirAll(staging, 0o750); err != nil {
			return out, err
		}
		xr := connectors.ExtractRequest{
			Table:      t,
			StagingDir: staging,
			Progress: func(n int64) {
				e.Progress.Set(req.RunID, t.Name, func(p *TableProgress) { p.Stage, p.Bytes = StageIngest, n })
			},
		}
		if !req.Full {
			xr.ChangedSince = e.changedSince(t)
		}
		e.Progress.Set(req.RunID, t.Name, func(p *TableProgress) { p.Stage, p.Bytes = StageIngest, 0 })
		x, err := src.Extract(msg.Context(), xr)
		if err != nil {
			return out, err
		}
		pipeline.Stamp(&out.Header, req.RunID, t.Name)
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
		if !xr.ChangedSince.IsZero() {
			since := xr.ChangedSince
			out.ChangedSince = &since
		}
		return out, nil
	})
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
