package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/ai-data-analyst/analyst/pull"
)

func init() {
	register(command{name: "pull", usage: "--server URL [--token T] [--dir D]  mirror your tables and docs, build DuckDB views", run: runPull})
	register(command{name: "push", usage: "[--dir D]  upload user/sessions/*.jsonl and CLAUDE.local.md to the server", run: runPush})
}

// workspaceFlags are the flags pull and push share.
type workspaceFlags struct {
	opts pull.Options
	json bool
}

func parseWorkspaceFlags(g *globals, name string, args []string, withPull bool) (*workspaceFlags, error) {
	fs := g.flags(name)
	w := &workspaceFlags{}
	fs.StringVar(&w.opts.Server, "server", "", "the server's URL (remembered in D/.analyst/config)")
	fs.StringVar(&w.opts.Token, "token", os.Getenv("ANALYST_TOKEN"), "your API token (env ANALYST_TOKEN; remembered, mode 0600)")
	fs.StringVar(&w.opts.Dir, "dir", ".", "the workspace folder")
	fs.BoolVar(&w.json, "json", false, "print the result as JSON")
	if withPull {
		fs.BoolVar(&w.opts.DryRun, "dry-run", false, "show what would be pulled and removed, change nothing")
		fs.IntVar(&w.opts.Parallel, "parallel", 4, "concurrent downloads")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("%s takes no arguments (got %q)", name, fs.Args())}
	}
	w.opts.Logger = g.logger
	return w, nil
}

func runPull(ctx context.Context, g *globals, args []string) error {
	w, err := parseWorkspaceFlags(g, "pull", args, true)
	if err != nil {
		return err
	}
	if !w.json && term.IsTerminal(int(os.Stderr.Fd())) {
		w.opts.Progress = os.Stderr
	}
	res, err := pull.Run(ctx, w.opts)
	if res != nil {
		report(os.Stdout, w.json, res, res.Summary(), res.Warnings)
		if !w.json && w.opts.DryRun {
			for _, f := range res.PulledFiles {
				fmt.Println("  pull  ", f)
			}
			for _, f := range res.RemovedFiles {
				fmt.Println("  remove", f)
			}
		}
	}
	return err
}

func runPush(ctx context.Context, g *globals, args []string) error {
	w, err := parseWorkspaceFlags(g, "push", args, false)
	if err != nil {
		return err
	}
	res, err := pull.Push(ctx, w.opts)
	if res != nil {
		report(os.Stdout, w.json, res, res.Summary(), res.Warnings)
	}
	return err
}

func report(out io.Writer, asJSON bool, v any, summary string, warnings []string) {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(v)
		return
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	fmt.Fprintln(out, summary)
}
