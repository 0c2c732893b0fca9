// Command analyst is the AI Data Analyst server and its command-line tools in one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one `analyst <name>` subcommand. Each lives in its own file and registers itself.
type command struct {
	name  string
	usage string // one line: arguments and what it does
	run   func(ctx context.Context, g *globals, args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// globals are the flags every command accepts before its own.
type globals struct {
	home    string
	verbose bool
	logger  *slog.Logger
}

// exitError carries a specific exit code (e.g. 1 when a table failed) without printing usage.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	g := &globals{}
	fs := flag.NewFlagSet("analyst", flag.ContinueOnError)
	fs.StringVar(&g.home, "home", envOr("ANALYST_HOME", "."), "instance folder (env ANALYST_HOME)")
	fs.BoolVar(&g.verbose, "v", false, "verbose (debug) logging")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		usage(fs)
		return 2
	}
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	g.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(g.logger)

	c, ok := commands[fs.Arg(0)]
	if !ok {
		fmt.Fprintf(os.Stderr, "analyst: unknown command %q\n\n", fs.Arg(0))
		usage(fs)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, g, fs.Args()[1:]); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "analyst:", ee.msg)
			}
			return ee.code
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "analyst:", err)
		return 1
	}
	return 0
}

func usage(fs *flag.FlagSet) {
	fmt.Fprintln(os.Stderr, "usage: analyst [--home DIR] <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].usage)
	}
	fmt.Fprintln(os.Stderr, "\nglobal flags:")
	fs.PrintDefaults()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
