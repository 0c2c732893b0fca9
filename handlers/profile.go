package handlers

import (
	"path/filepath"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/catalog"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// profile refreshes the catalog entry of a converted table: it profiles the published Parquet
// (all partitions) and records the profile in data/metadata/profiles.json, or in the private
// profiles file for a private table. A table that cannot be profiled keeps its previous
// profile, marked stale; that is reported in the event, not as a failure of the run.
func (e *Env) profile(msg *message.Message) ([]pipeline.Event, error) {
	var in pipeline.TableConverted
	if err := pipeline.Decode(msg, &in); err != nil {
		return nil, pipeline.Permanent(err)
	}
	if in.Chunk != nil && !in.Chunk.Last {
		return nil, nil // profiled once the whole first load is in
	}
	t, err := e.table(in.Table)
	if err != nil {
		return nil, err
	}
	return once(e, StageProfile, msg, func() (pipeline.TableProfiled, error) {
		out := pipeline.TableProfiled{Rows: in.Rows}
		pipeline.Stamp(&out.Header, in.RunID, in.Table)
		path := e.Target(t)
		if in.Path != "" {
			path = filepath.Join(e.Config.Paths.Parquet, filepath.FromSlash(in.Path))
		}
		p, err := catalog.ProfileParquet(msg.Context(), path, catalog.Options{PrimaryKey: t.PrimaryKey})
		if err == nil {
			err = e.saveProfile(t.Name, p)
		}
		if err != nil {
			if msg.Context().Err() != nil {
				return out, err // shutting down: profile it when the message is redelivered
			}
			out.Stale, out.Error = true, err.Error()
			e.stateMu.Lock()
			had, serr := catalog.FilesFor(e.Config.Paths).MarkStale(e.Config, t, err, e.Now())
			e.stateMu.Unlock()
			e.Logger.Warn("cannot profile table; its previous profile is kept, marked stale",
				"run_id", in.RunID, "table", t.Name, "error", err, "had_profile", had)
			if serr != nil {
				e.Logger.Error("cannot mark profile stale", "table", t.Name, "error", serr)
			}
			return out, nil
		}
		out.Rows = p.RowCount
		e.Logger.Debug("profiled", "run_id", in.RunID, "table", t.Name, "rows", p.RowCount,
			"columns", p.ColumnCount, "sampled", p.Sampled, "seconds", float64(p.ProfileSeconds))
		return out, nil
	})
}

// saveProfile adds what the catalogue, sync state and metrics know, and records the profile.
func (e *Env) saveProfile(name string, p *catalog.TableProfile) error {
	t, err := e.table(name)
	if err != nil {
		return err
	}
	metrics, merr := catalog.LoadMetrics(filepath.Join(e.Config.Paths.DocsDir, "metrics"), func(n string) bool {
		_, ok := e.Config.Catalogue.Table(n)
		return ok
	})
	if merr != nil {
		e.Logger.Warn("metric definitions with problems are left out", "error", merr)
	}
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	state, err := store.LoadSyncState(e.syncStatePath())
	if err != nil {
		return err
	}
	var ts *store.TableState
	if s, ok := state.Tables[t.ID]; ok {
		ts = &s
	}
	catalog.Enrich(p, e.Config.Catalogue, t, ts, metrics)
	return catalog.FilesFor(e.Config.Paths).Put(e.Config, t, p, e.Now())
}
