package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "jira", usage: "check [--deep|--days N] [--no-fix] | backfill [--jql Q] [--keys A,B] [--all]  [--server URL --token T]  Jira consistency check and backfill (through the API while serve runs)", run: runJira})
}

// newJira builds the app's Jira stages and registers them on its router (called from app.init).
func newJira(a *app) (*handlers.Jira, error) {
	opts := handlers.JiraOptions{Config: a.cfg, DB: a.db, Logger: a.logger}
	if a.backend == a.log {
		opts.Log = a.log // pending partition writes are read back from it at start
	}
	j, err := handlers.NewJira(opts)
	if err != nil {
		return nil, err
	}
	return j, j.Register(a.router)
}

func runJira(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "backfill") {
		return errors.New("usage: analyst jira check [--deep|--days N] [--no-fix] | analyst jira backfill [--jql Q] [--keys A,B] [--all]")
	}
	sub, args := args[0], args[1:]
	fs := g.flags("jira " + sub)
	var (
		days     = fs.Int("days", 30, "check: issues created in the last N days")
		deep     = fs.Bool("deep", false, "check: the deep check (365 days)")
		noFix    = fs.Bool("no-fix", false, "check: report only, repair nothing")
		jql      = fs.String("jql", "", "backfill: the issues to feed (default: all, oldest first); check: replaces the window")
		keys     = fs.String("keys", "", "backfill: comma-separated issue keys instead of a search")
		all      = fs.Bool("all", false, "backfill: also issues already stored")
		jsonOut  = fs.Bool("json", false, "check: print the report as JSON")
		maxWaitS = fs.Duration("wait", 30*time.Minute, "how long to wait for the pipeline to finish")
		server   = fs.String("server", os.Getenv("ANALYST_SERVER"), "run it on this running server, through its API (default when the server runs here)")
		token    = fs.String("token", "", "admin API token for the server (default env ANALYST_ADMIN_TOKEN)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	checkOpts := handlers.CheckOptions{Days: *days, JQL: *jql, Fix: !*noFix}
	if *deep {
		checkOpts.Days = 365
	}
	backfillOpts := handlers.BackfillOptions{JQL: *jql, SkipExisting: !*all}
	if *keys != "" {
		for _, k := range strings.Split(*keys, ",") {
			if k = strings.TrimSpace(k); k != "" {
				backfillOpts.Keys = append(backfillOpts.Keys, k)
			}
		}
	}
	var a *app
	if *server == "" {
		var err error
		a, err = openApp(g, openOptions{})
		if err != nil && !errors.Is(err, store.ErrInUse) {
			return err
		}
		if err != nil {
			g.logger.Info("the server is running: asking it through its API")
		}
	}
	if a == nil {
		api, err := runningServer(*server, *token)
		if err != nil {
			return err
		}
		if sub == "check" {
			var rep handlers.CheckReport
			err := api.call(ctx, http.MethodPost, "/api/jira/check", portal.JiraCheckRequest{Days: checkOpts.Days, JQL: checkOpts.JQL, NoFix: !checkOpts.Fix}, &rep)
			if err != nil {
				return err
			}
			return printCheck(&rep, *jsonOut, "the server's data/raw/jira/_consistency_report.json")
		}
		var out struct{ Queued int }
		err = api.call(ctx, http.MethodPost, "/api/jira/backfill", portal.JiraBackfillRequest{JQL: backfillOpts.JQL, Keys: backfillOpts.Keys, All: !backfillOpts.SkipExisting}, &out)
		if err != nil {
			return err
		}
		fmt.Printf("queued %d issues; the server fetches them\n", out.Queued)
		return nil
	}
	defer a.close()
	j := a.jira
	if !j.Configured() {
		return errors.New("jira is not configured: set jira.domain (or base_url), email and api_token in config/instance.yaml")
	}
	if err := a.start(ctx); err != nil {
		return err
	}
	var exit error
	switch sub {
	case "check":
		rep, err := j.Check(ctx, checkOpts)
		if err != nil {
			return err
		}
		exit = printCheck(rep, *jsonOut, j.ReportPath())
	case "backfill":
		n, err := j.Backfill(ctx, backfillOpts)
		if err != nil {
			return err
		}
		fmt.Printf("queued %d issues\n", n)
	}
	// Let the pipeline fetch and write what was queued before the store closes.
	a.waitIdle(ctx, *maxWaitS)
	if err := ctx.Err(); err != nil {
		return err
	}
	return exit
}

// printCheck prints a consistency report; more than ten missing issues is exit status 1.
func printCheck(rep *handlers.CheckReport, asJSON bool, reportPath string) error {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		d := rep.Discrepancies
		fmt.Printf("%s check (%d days): Jira %d, raw %d, Parquet %d\n", rep.CheckType, rep.MaxAgeDays, rep.Counts.JiraAPI, rep.Counts.RawJSON, rep.Counts.Parquet)
		fmt.Printf("missing in raw JSON: %d %s\nmissing in Parquet: %d %s\nin Parquet, not in Jira: %d %s\n",
			len(d.MissingInJSON), short(d.MissingInJSON), len(d.MissingInParquet), short(d.MissingInParquet), len(d.NotInJira), short(d.NotInJira))
		fmt.Printf("alert: %s; report: %s\n", rep.AlertLevel, reportPath)
	}
	if rep.AlertLevel == "ERROR" {
		return &exitError{code: 1, msg: "more than 10 issues were missing"}
	}
	return nil
}

func short(keys []string) string {
	if len(keys) > 10 {
		return strings.Join(keys[:10], ",") + ",..."
	}
	return strings.Join(keys, ",")
}
