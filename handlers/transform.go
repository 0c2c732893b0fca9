package handlers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// transform converts a staged extract to typed Parquet and applies the table's strategy to the
// published files; the previous version stays intact until the new one is complete.
func (e *Env) transform(msg *message.Message) ([]pipeline.Event, error) {
	var in pipeline.TableExtracted
	if err := pipeline.Decode(msg, &in); err != nil {
		return nil, pipeline.Permanent(err)
	}
	t, err := e.table(in.Table)
	if err != nil {
		return nil, err
	}
	return once(e, StageTransform, msg, func() (pipeline.TableConverted, error) {
		var out pipeline.TableConverted
		pipeline.Stamp(&out.Header, in.RunID, t.Name)
		out.Source = "sync"
		var opts store.ConvertOptions
		if err := json.Unmarshal(in.Format, &opts.Format); err != nil {
			return out, pipeline.Permanent(fmt.Errorf("extract format: %w", err))
		}
		if err := json.Unmarshal(in.Columns, &opts.Columns); err != nil {
			return out, pipeline.Permanent(fmt.Errorf("extract columns: %w", err))
		}
		opts.Metadata = map[string]string{"table_id": t.ID, "run_id": in.RunID}
		opts.Progress = func(bytes, rows int64) {
			e.Progress.Set(in.RunID, t.Name, func(p *TableProgress) {
				p.Stage, p.Bytes, p.TotalBytes, p.Rows = StageTransform, bytes, in.Bytes, rows
			})
		}
		staging := filepath.Join(e.Config.Paths.Staging, in.RunID)
		staged := filepath.Join(staging, t.Name+".parquet")
		var warnings []store.ConversionWarning
		if len(in.Files) > 0 {
			rep, err := store.ConvertCSV(msg.Context(), in.Files, opts, staged)
			if err != nil {
				return out, err
			}
			warnings = rep.Warnings
			for _, w := range rep.Warnings {
				out.Warnings = append(out.Warnings, pipeline.Warning{Column: w.Column, Count: w.Count, FirstRow: w.FirstRow, Example: w.Example, Reason: w.Reason})
			}
			if err := e.apply(msg, t, staged, in.ChangedSince == nil, &out); err != nil {
				return out, err
			}
		}
		out.Path = e.relParquet(t)
		out.Chunk = in.Chunk
		syncedAt := e.Now()
		if in.Chunk != nil {
			// A chunked first load counts as synced only when its last chunk is in, and as of
			// the moment it started, so the next incremental window covers the whole load.
			syncedAt = time.Time{}
			if in.Chunk.Last {
				if load, ok, err := e.Runs.InitialLoad(t.ID); err == nil && ok {
					syncedAt = load.Anchor
				}
			}
		}
		if err := e.recordSync(t, in.RunID, syncedAt, &out); err != nil {
			return out, err
		}
		if in.Chunk != nil && in.Chunk.Last {
			if err := e.Runs.SetInitialLoad(t.ID, nil); err != nil {
				return out, err
			}
		}
		if err := e.Runs.Update(in.RunID, func(run *store.Run) {
			rt := run.Table(t.Name)
			rt.Rows = out.Rows
			for _, w := range warnings {
				rt.Warnings = append(rt.Warnings, store.RunWarning{Column: w.Column, Count: w.Count, File: filepath.Base(w.File), FirstRow: w.FirstRow, Example: w.Example, Reason: w.Reason})
			}
		}); err != nil {
			return out, err
		}
		if in.Temporary {
			for _, f := range in.Files {
				os.Remove(f)
			}
		}
		// The staging folder is the run's, shared by its other tables still converting: remove
		// only this table's file, and the folder once it is empty.
		os.Remove(staged)
		os.Remove(staging)
		return out, nil
	})
}

// Target is where a table's Parquet lives: a file, or a folder of partitions.
func (e *Env) Target(t config.Table) string {
	if t.IsPartitioned() {
		return filepath.Join(e.Config.Paths.Parquet, t.Folder, t.Name)
	}
	return filepath.Join(e.Config.Paths.Parquet, t.Folder, t.Name+".parquet")
}

func (e *Env) relParquet(t config.Table) string {
	rel, _ := filepath.Rel(e.Config.Paths.Parquet, e.Target(t))
	return filepath.ToSlash(rel)
}
