package handlers

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// engineMemory caps the DuckDB engine that merges incremental and partitioned tables; above
// it DuckDB spills to data/staging.
const engineMemory = "1GB"

// apply puts a staged Parquet file in place according to the table's strategy. fullExport
// says the staged rows are the whole table (no change window), so rows missing from them are
// gone from the source.
func (e *Env) apply(msg *message.Message, t config.Table, staged string, fullExport bool, out *pipeline.TableConverted) error {
	target := e.Target(t)
	switch {
	case t.IsPartitioned():
		db, err := e.engine()
		if err != nil {
			return err
		}
		// With where_filters the export is a slice of the table, so absence proves nothing.
		deletes := fullExport && len(t.WhereFilters) == 0
		st, err := store.UpsertPartitions(msg.Context(), db, staged, target,
			store.Partitioning{Column: t.PartitionBy, Granularity: t.PartitionGranularity}, t.PrimaryKey, deletes)
		if err != nil {
			return err
		}
		out.Partitions = st.PartitionsWritten
		return nil
	case t.SyncStrategy == config.Incremental && !fullExport:
		if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
			return store.ApplyFullRefresh(staged, target)
		}
		db, err := e.engine()
		if err != nil {
			return err
		}
		_, err = store.UpsertFile(msg.Context(), db, staged, target, t.PrimaryKey)
		return err
	default:
		return store.ApplyFullRefresh(staged, target)
	}
}

// engine opens (once) the DuckDB engine used for merges.
func (e *Env) engine() (*sql.DB, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.duck != nil {
		return e.duck, nil
	}
	dir := filepath.Join(e.Config.Paths.Staging, "duckdb")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	db, err := store.OpenEngine(dir, engineMemory)
	if err != nil {
		return nil, err
	}
	e.duck = db
	return db, nil
}

// recordSync fills the converted event's totals from the published files and, unless at is
// zero, records the table as synced at that time in data/metadata/sync_state.json.
func (e *Env) recordSync(t config.Table, runID string, at time.Time, out *pipeline.TableConverted) error {
	st, err := store.TableStats(e.Target(t))
	if errors.Is(err, os.ErrNotExist) {
		st, err = store.TableStat{}, nil // nothing synced yet and nothing new
	}
	if err != nil {
		return err
	}
	out.Rows, out.Columns, out.Bytes = st.Rows, st.Columns, st.Bytes
	if at.IsZero() {
		return nil
	}
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	path := e.syncStatePath()
	state, err := store.LoadSyncState(path)
	if err != nil {
		return pipeline.Permanent(err)
	}
	ts := store.NewTableState(t.Name, t.SyncStrategy, at, st)
	ts.RunID = runID
	state.Set(t.ID, ts)
	return state.Save(path, e.Now())
}

// lastSync is when the table last synced successfully.
func (e *Env) lastSync(t config.Table) (time.Time, bool) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	state, err := store.LoadSyncState(e.syncStatePath())
	if err != nil {
		e.Logger.Warn("cannot read sync state; syncing the whole table", "error", err)
		return time.Time{}, false
	}
	ts, ok := state.Tables[t.ID]
	return ts.LastSync, ok && !ts.LastSync.IsZero()
}

func (e *Env) syncStatePath() string {
	return filepath.Join(e.Config.Paths.Metadata, "sync_state.json")
}

// Close releases the merge engine.
func (e *Env) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.duck == nil {
		return nil
	}
	err := e.duck.Close()
	e.duck = nil
	return err
}
