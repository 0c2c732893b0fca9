package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "sync", usage: "[--full] [TABLE...]  sync tables (all by default) through the pipeline", run: runSync})
}

func runSync(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("sync")
	full := fs.Bool("full", false, "ignore incremental state and reload everything")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openApp(g, openOptions{})
	if err != nil {
		return err
	}
	defer a.close()
	tables, err := a.tableNames(fs.Args())
	if err != nil {
		return err
	}
	// Analysts' alert scripts that depend on a synced table run as they would under serve.
	if _, err := a.setupNotifications(); err != nil {
		return err
	}
	if err := a.start(ctx); err != nil {
		return err
	}
	runID, err := handlers.RequestSync(a.router.Publisher(), a.runs, tables, pipeline.TriggerManual, "cli", *full)
	if err != nil {
		return err
	}
	run, err := a.follow(ctx, runID, os.Stderr)
	if err != nil {
		return err
	}
	printRun(os.Stdout, run)
	a.waitIdle(ctx, time.Minute) // the run's last acks, and the alert scripts it queued
	if run.Status == store.RunFailed {
		failed := 0
		for _, t := range run.Tables {
			if t.Status == store.RunFailed {
				failed++
			}
		}
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d tables failed; `analyst replay --failed` retries them", failed, len(run.Tables))}
	}
	return nil
}

// waitIdle waits, at most timeout, until the pipeline has durably acked everything queued so
// far (the last stage of a run, alert scripts, Jira writes), so that a command closing the
// store leaves nothing half done to run again at the next start.
func (a *app) waitIdle(ctx context.Context, timeout time.Duration) {
	if a.log == nil {
		return
	}
	for deadline := time.Now().Add(timeout); ; {
		n, err := a.log.Backlog()
		if err != nil || n == 0 {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "%d queued messages not done yet; they run at the next start\n", n)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tableNames resolves names or ids to table names; none means every table.
func (a *app) tableNames(args []string) ([]string, error) {
	if len(args) == 0 {
		var names []string
		for _, t := range a.cfg.Catalogue.SyncedTables() {
			names = append(names, t.Name)
		}
		return names, nil
	}
	var names, unknown []string
	for _, arg := range args {
		t, ok := a.cfg.Catalogue.Table(arg)
		switch {
		case !ok:
			unknown = append(unknown, arg)
		case !t.Synced():
			return nil, fmt.Errorf("table %s is written by the Jira webhooks; `analyst jira backfill` loads it", t.Name)
		default:
			names = append(names, t.Name)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown table(s) %s; `analyst sync` with no arguments syncs all", strings.Join(unknown, ", "))
	}
	return names, nil
}

// follow shows a bar per table until the run finishes and returns the finished run.
func (a *app) follow(ctx context.Context, runID string, out io.Writer) (*store.Run, error) {
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	var progress *mpb.Progress
	if tty {
		progress = mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithRefreshRate(150*time.Millisecond))
	}
	bars := map[string]*mpb.Bar{}
	reported := map[string]string{}
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for {
		run, err := a.runs.Get(runID)
		if err != nil {
			return nil, err
		}
		for _, t := range run.Tables {
			p, _ := a.env.Progress.Get(runID, t.Name)
			if progress == nil {
				if state := t.Status + "/" + lastStage(t); reported[t.Name] != state && t.Status != store.RunQueued {
					reported[t.Name] = state
					fmt.Fprintf(out, "%-24s %-9s %s\n", t.Name, t.Status, lastStage(t))
				}
				continue
			}
			bar, ok := bars[t.Name]
			if !ok {
				name := t.Name
				bar = progress.AddBar(0,
					mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-22s", name)), decor.Any(func(decor.Statistics) string {
						p, _ := a.env.Progress.Get(runID, name)
						return fmt.Sprintf("%-9s %9d rows", p.Stage, p.Rows)
					})),
					mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name(" "), decor.AverageETA(decor.ET_STYLE_GO)),
				)
				bars[t.Name] = bar
			}
			if p.TotalBytes > 0 {
				bar.SetTotal(p.TotalBytes, false)
			}
			bar.SetCurrent(p.Bytes)
			if t.Status == store.RunSucceeded || t.Status == store.RunFailed {
				bar.SetTotal(-1, true)
			}
		}
		if run.Status == store.RunSucceeded || run.Status == store.RunFailed {
			if progress != nil {
				progress.Wait()
			}
			return run, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func lastStage(t *store.RunTable) string {
	if len(t.Stages) == 0 {
		return ""
	}
	return t.Stages[len(t.Stages)-1].Name
}

// printRun prints the results table of a run.
func printRun(out io.Writer, run *store.Run) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TABLE\tSTATUS\tROWS\tSECONDS\tERROR")
	for _, t := range run.Tables {
		secs := 0.0
		for _, s := range t.Stages {
			secs += s.Duration
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%.2f\t%s\n", t.Name, t.Status, t.Rows, secs, firstLine(t.Error))
	}
	w.Flush()
	for _, t := range run.Tables {
		for _, wn := range t.Warnings {
			fmt.Fprintf(out, "warning: %s.%s: %d value(s) %s, first in %s row %d: %q (written as null)\n",
				t.Name, wn.Column, wn.Count, wn.Reason, wn.File, wn.FirstRow, wn.Example)
		}
	}
	fmt.Fprintf(out, "run %s %s\n", run.RunID, run.Status)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
