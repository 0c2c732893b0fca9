package handlers

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // DuckDB reads the published Parquet for the jobs

	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/schedule"
	"github.com/ai-data-analyst/analyst/store"
)

// RunJobs runs the periodic Jira jobs until ctx ends: the SLA poll every 15 minutes (when the
// service account is set up), the quick consistency check (30 days) every 30 minutes, the deep
// one (365 days) on Sundays at 03:00 UTC, and the pruning of old webhook delivery ids.
func (j *Jira) RunJobs(ctx context.Context) {
	if !j.Configured() {
		return
	}
	s := schedule.New(j.opts.Logger, nil)
	add := func(name, spec string, fn func(context.Context)) {
		sched, err := schedule.Parse(spec)
		if err != nil {
			panic(err) // constant specs
		}
		s.Add(name, sched, fn)
	}
	if j.client.SLAConfigured() {
		add("jira-sla-poll", "every 15m", func(ctx context.Context) {
			if _, err := j.PollSLA(ctx); err != nil {
				j.log.Error("jira: SLA poll", "error", err)
			}
		})
	}
	check := func(days int) func(context.Context) {
		return func(ctx context.Context) {
			if _, err := j.Check(ctx, CheckOptions{Days: days, Fix: true}); err != nil {
				j.log.Error("jira: consistency check", "days", days, "error", err)
			}
		}
	}
	add("jira-check", "every 30m", check(30))
	add("jira-check-deep", "0 3 * * 0", check(365))
	add("jira-prune", "daily 04:00", func(context.Context) {
		if err := j.PruneDeliveries(j.opts.Now().Add(-7 * 24 * time.Hour)); err != nil {
			j.log.Error("jira: prune webhook ids", "error", err)
		}
	})
	s.Run(ctx)
}

// query runs a DuckDB query over one Jira table (every month) and returns the first column.
func (j *Jira) query(ctx context.Context, table, sel, where string) ([]string, error) {
	glob := filepath.Join(j.parquet, table, "*.parquet")
	if files, _ := filepath.Glob(glob); len(files) == 0 {
		return nil, nil
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	q := fmt.Sprintf("SELECT DISTINCT %s FROM read_parquet('%s') WHERE %s", sel, strings.ReplaceAll(glob, "'", "''"), where)
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("jira: read %s: %w", glob, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		if v.Valid {
			out = append(out, v.String)
		}
	}
	sort.Strings(out)
	return out, rows.Err()
}

// PollSLA queues an SLA refresh for every open issue (status category not Done) that has SLA
// data, and returns how many it queued.
func (j *Jira) PollSLA(ctx context.Context) (int, error) {
	if !j.client.SLAConfigured() {
		return 0, errors.New("jira: the SLA poll needs sla_email, sla_api_token and cloud_id")
	}
	keys, err := j.query(ctx, "issues", "issue_key",
		"(status_category IS NULL OR status_category <> 'Done') AND (first_response_elapsed_millis IS NOT NULL OR time_to_resolution_elapsed_millis IS NOT NULL)")
	if err != nil {
		return 0, err
	}
	if err := j.Enqueue(JiraEventSLA, keys...); err != nil {
		return 0, err
	}
	j.log.Info("jira: SLA poll queued", "issues", len(keys))
	return len(keys), nil
}

// CheckOptions tune a consistency check.
type CheckOptions struct {
	Days       int    // issues created in the last Days days (default 30)
	JQL        string // replaces the window's JQL
	Fix        bool   // queue repairs through the pipeline
	MaxRepairs int    // at most this many repairs per run (default 1000); the rest waits for the next run
}

// CheckReport is the consistency check's result, kept as data/raw/jira/_consistency_report.json.
type CheckReport struct {
	Timestamp  time.Time `json:"timestamp"`
	CheckType  string    `json:"check_type"` // incremental (≤ 90 days) or deep
	MaxAgeDays int       `json:"max_age_days"`
	JQL        string    `json:"jql"`
	DurationS  float64   `json:"duration_seconds"`
	Counts     struct {
		JiraAPI int `json:"jira_api"`
		RawJSON int `json:"raw_json"`
		Parquet int `json:"parquet"`
	} `json:"counts"`
	Discrepancies struct {
		MissingInJSON    []string `json:"missing_in_json"`    // in Jira, no live raw file: lost webhooks
		MissingInParquet []string `json:"missing_in_parquet"` // raw file, no rows: a write that did not happen
		NotInJira        []string `json:"not_in_jira"`        // rows for issues Jira no longer lists: deleted or moved
	} `json:"discrepancies"`
	Actions struct {
		Backfill    []string `json:"backfill"`
		Retransform []string `json:"retransform"`
		Verify      []string `json:"verify"`
		Deferred    int      `json:"deferred,omitempty"` // over MaxRepairs
	} `json:"actions"`
	Status     string `json:"status"`      // success, or error with Error
	AlertLevel string `json:"alert_level"` // INFO (≤ 5 missing), WARNING (≤ 10), ERROR
	Error      string `json:"error,omitempty"`
}

// Check compares the issues Jira lists for a window with the raw store and the Parquet,
// queues repairs through the pipeline when asked to, and writes the report.
func (j *Jira) Check(ctx context.Context, o CheckOptions) (*CheckReport, error) {
	start := j.opts.Now()
	if o.Days <= 0 {
		o.Days = 30
	}
	if o.MaxRepairs <= 0 {
		o.MaxRepairs = 1000
	}
	rep := &CheckReport{Timestamp: start.UTC(), MaxAgeDays: o.Days, CheckType: "incremental", JQL: o.JQL}
	if o.Days > 90 {
		rep.CheckType = "deep"
	}
	if rep.JQL == "" {
		// Relative dates: Jira reads absolute ones in the API user's time zone.
		rep.JQL = fmt.Sprintf("created >= -%dd AND created <= -5m ORDER BY created ASC", o.Days)
	}
	err := j.check(ctx, o, rep)
	rep.DurationS = j.opts.Now().Sub(start).Seconds()
	if err != nil {
		rep.Status, rep.AlertLevel, rep.Error = "error", "ERROR", err.Error()
	}
	if werr := j.writeReport(rep); werr != nil && err == nil {
		err = werr
	}
	j.log.Info("jira: consistency check", "type", rep.CheckType, "jira", rep.Counts.JiraAPI, "missing_in_json", len(rep.Discrepancies.MissingInJSON),
		"missing_in_parquet", len(rep.Discrepancies.MissingInParquet), "not_in_jira", len(rep.Discrepancies.NotInJira), "alert", rep.AlertLevel)
	return rep, err
}

func (j *Jira) check(ctx context.Context, o CheckOptions, rep *CheckReport) error {
	inJira := map[string]bool{}
	err := j.client.Search(ctx, rep.JQL, func(keys []string) error {
		for _, k := range keys {
			inJira[k] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	rep.Counts.JiraAPI = len(inJira)
	where := "true"
	if o.JQL == "" {
		where = fmt.Sprintf("created_at >= now() - INTERVAL %d DAY AND created_at <= now() - INTERVAL 5 MINUTE", o.Days)
	}
	inParquet, err := j.query(ctx, "issues", "issue_key", where)
	if err != nil {
		return err // never read as "nothing in Parquet"
	}
	rep.Counts.Parquet = len(inParquet)
	parquet := map[string]bool{}
	for _, k := range inParquet {
		parquet[k] = true
	}
	for _, k := range sortedKeys(inJira) {
		raw, err := j.raw.Read(k)
		switch {
		case err != nil && !errors.Is(err, os.ErrNotExist):
			j.log.Warn("jira: unreadable raw issue; fetching it again", "issue", k, "error", err)
			fallthrough
		case err != nil || jira.IsTombstone(raw):
			rep.Discrepancies.MissingInJSON = append(rep.Discrepancies.MissingInJSON, k)
		default:
			rep.Counts.RawJSON++
			if !parquet[k] {
				rep.Discrepancies.MissingInParquet = append(rep.Discrepancies.MissingInParquet, k)
			}
		}
	}
	for _, k := range inParquet {
		if !inJira[k] {
			rep.Discrepancies.NotInJira = append(rep.Discrepancies.NotInJira, k)
		}
	}
	missing := len(rep.Discrepancies.MissingInJSON)
	switch {
	case missing <= 5:
		rep.AlertLevel = "INFO"
	case missing <= 10:
		rep.AlertLevel = "WARNING"
	default:
		rep.AlertLevel = "ERROR"
	}
	rep.Status = "success"
	if !o.Fix {
		return nil
	}
	budget := o.MaxRepairs
	queue := func(event string, keys []string, done *[]string) error {
		n := min(len(keys), budget)
		budget -= n
		rep.Actions.Deferred += len(keys) - n
		if err := j.Enqueue(event, keys[:n]...); err != nil {
			return err
		}
		*done = append([]string{}, keys[:n]...)
		return nil
	}
	if err := queue(JiraEventBackfill, rep.Discrepancies.MissingInJSON, &rep.Actions.Backfill); err != nil {
		return err
	}
	if err := queue(JiraEventRetransform, rep.Discrepancies.MissingInParquet, &rep.Actions.Retransform); err != nil {
		return err
	}
	return queue(JiraEventVerify, rep.Discrepancies.NotInJira, &rep.Actions.Verify)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ReportPath is where the last consistency report is kept.
func (j *Jira) ReportPath() string { return filepath.Join(j.RawDir(), "_consistency_report.json") }

func (j *Jira) writeReport(rep *CheckReport) error {
	return store.WriteFileAtomic(j.ReportPath(), 0o660, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	})
}

// BackfillOptions choose the issues a backfill feeds through the pipeline.
type BackfillOptions struct {
	JQL          string   // default: every issue, oldest first
	Keys         []string // instead of a search
	SkipExisting bool     // leave issues that have a live raw file alone
}

// Backfill queues a fetch of every issue the JQL (or the key list) names and returns how many
// it queued; the pipeline does the rest as for webhooks.
func (j *Jira) Backfill(ctx context.Context, o BackfillOptions) (int, error) {
	if !j.Configured() {
		return 0, ErrJiraNotConfigured
	}
	queued := 0
	feed := func(keys []string) error {
		var todo []string
		for _, k := range keys {
			if !jira.ValidKey(k) {
				return fmt.Errorf("jira: %q is not an issue key", k)
			}
			if o.SkipExisting {
				if raw, err := j.raw.Read(k); err == nil && !jira.IsTombstone(raw) {
					continue
				}
			}
			todo = append(todo, k)
		}
		queued += len(todo)
		return j.Enqueue(JiraEventBackfill, todo...)
	}
	if len(o.Keys) > 0 {
		return queued, feed(o.Keys)
	}
	jql := o.JQL
	if jql == "" {
		jql = "created IS NOT EMPTY ORDER BY created ASC"
	}
	return queued, j.client.Search(ctx, jql, feed)
}
