package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "replay", usage: "[--failed] [--run ID] [--list]  re-run failed messages (failed syncs, webhooks)", run: runReplay})
}

func runReplay(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("replay")
	fs.Bool("failed", true, "replay messages that failed for good (the poison topics)")
	runID := fs.String("run", "", "only messages of this run")
	list := fs.Bool("list", false, "only list them")
	asJSON := fs.Bool("json", false, "print the list as JSON lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openApp(g, openOptions{})
	if err != nil {
		return err
	}
	defer a.close()
	replayer := pipeline.NewReplayer(a.poisonLog())
	match := func(p pipeline.Poisoned) bool { return *runID == "" || p.RunID == *runID }
	pending, err := replayer.List(true)
	if err != nil {
		return err
	}
	var selected []pipeline.Poisoned
	for _, p := range pending {
		if match(p) {
			selected = append(selected, p)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, p := range selected {
			enc.Encode(p)
		}
	} else {
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TOPIC\tHANDLER\tRUN\tTABLE\tATTEMPTS\tFAILED AT\tERROR")
		for _, p := range selected {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Topic, p.Handler, p.RunID, p.Table, p.Attempts, p.FailedAt.Format("2006-01-02 15:04:05"), firstLine(p.Reason))
		}
		w.Flush()
	}
	if *list || len(selected) == 0 {
		if len(selected) == 0 {
			fmt.Fprintln(os.Stderr, "nothing to replay")
		}
		return nil
	}
	if err := a.start(ctx); err != nil {
		return err
	}
	replayed, err := replayer.Replay(match, handlers.Requeue(a.runs))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "replayed %d message(s); waiting for their runs\n", len(replayed))
	failed := 0
	seen := map[string]bool{}
	for _, p := range replayed {
		if p.RunID == "" || seen[p.RunID] {
			continue
		}
		seen[p.RunID] = true
		run, err := a.follow(ctx, p.RunID, os.Stderr)
		if err != nil {
			return err
		}
		printRun(os.Stdout, run)
		if run.Status == store.RunFailed {
			failed++
		}
	}
	a.waitIdle(ctx, time.Minute)
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d run(s) still failed", failed)}
	}
	return nil
}
