package handlers

import (
	"context"
	"errors"
	"os"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/config"
	csvsource "github.com/ai-data-analyst/analyst/connectors/csv"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/schedule"
)

// Triggers start sync runs: on schedules, when a watched source changes, and at start for
// tables that were never synced.
type Triggers struct {
	Env *Env
	Pub message.Publisher
}

// Request starts a run for tables.
func (tr *Triggers) Request(tables []string, trigger, by string) (string, error) {
	return RequestSync(tr.Pub, tr.Env.Runs, tables, trigger, by, false)
}

// SyncIfIdle starts a run for table unless one is still queued or running; it returns the new
// run's id, or "" when it skipped.
func (tr *Triggers) SyncIfIdle(table, trigger string) (string, error) {
	active, err := tr.Env.Runs.ActiveTables()
	if err != nil {
		return "", err
	}
	if runID := active[table]; runID != "" {
		tr.Env.Logger.Info("sync skipped: the table is still syncing", "table", table, "run_id", runID, "trigger", trigger)
		return "", nil
	}
	return tr.Request([]string{table}, trigger, trigger)
}

// Schedule adds a job for every table with a schedule; Run the scheduler to fire them.
func (tr *Triggers) Schedule(s *schedule.Scheduler) {
	for _, t := range tr.Env.Config.Catalogue.Tables {
		if t.Schedule == "" || !t.Synced() {
			continue
		}
		sched, err := schedule.Parse(t.Schedule)
		if err != nil { // validated at load; kept as a guard
			tr.Env.Logger.Error("bad schedule", "table", t.Name, "error", err)
			continue
		}
		name := t.Name
		s.Add(name, sched, func(context.Context) {
			if _, err := tr.SyncIfIdle(name, pipeline.TriggerSchedule); err != nil {
				tr.Env.Logger.Error("scheduled sync", "table", name, "error", err)
			}
		})
	}
}

// WatchSources syncs a CSV table when its files change (data_source.csv.watch), until ctx ends.
func (tr *Triggers) WatchSources(ctx context.Context) {
	bySource := map[string][]config.Table{}
	for _, t := range tr.Env.Config.Catalogue.Tables {
		bySource[t.Source] = append(bySource[t.Source], t)
	}
	for name, tables := range bySource {
		src, err := tr.Env.Source(name)
		if err != nil {
			continue
		}
		watched, ok := src.(*csvsource.Source)
		if !ok || !watched.WatchEnabled() {
			continue
		}
		go func() {
			err := watched.Watch(ctx, tables, func(table string) {
				if t, ok := tr.Env.Config.Catalogue.Table(table); ok {
					table = t.Name
				}
				if _, err := tr.SyncIfIdle(table, pipeline.TriggerWatch); err != nil {
					tr.Env.Logger.Error("watch sync", "table", table, "error", err)
				}
			})
			if err != nil && ctx.Err() == nil {
				tr.Env.Logger.Error("watching the CSV source stopped", "source", name, "error", err)
			}
		}()
	}
}

// SyncMissing starts one run for every table that has no Parquet yet, so a new instance (or
// the demo) shows data within seconds without anyone pressing a button.
func (tr *Triggers) SyncMissing() (string, error) {
	var missing []string
	for _, t := range tr.Env.Config.Catalogue.SyncedTables() {
		if _, err := os.Stat(tr.Env.Target(t)); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, t.Name)
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	return tr.Request(missing, pipeline.TriggerStartup, "serve")
}
