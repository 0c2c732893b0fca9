package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
)

// jiraHome is an instance fed by fake, which holds SUP-1 to SUP-4.
func jiraHome(t *testing.T, fake *jiratest.Server) string {
	for i := 1; i <= 4; i++ {
		fake.Put(fake.NewIssue(fmt.Sprintf("SUP-%d", i), 50000+i, "2025-01-15T10:00:00.000+0000", jiratest.Shape{Comments: 1}))
	}
	home := t.TempDir()
	files := map[string]string{
		"config/instance.yaml": fmt.Sprintf("instance: {name: J}\ndata_source:\n  type: csv\n  csv: {path: source}\njira:\n  base_url: %s\n  email: %s\n  api_token: %s\n  webhook_secret: s\n",
			fake.URL, jiratest.Email, jiratest.Token),
		"docs/data_description.md": "# T\n\n```yaml\ntables:\n  - {id: shop.orders, name: orders, folder: shop, primary_key: id, sync_strategy: full_refresh, csv: {path: orders.csv}}\n```\n",
	}
	for name, content := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(home, name)), 0o755)
		os.WriteFile(filepath.Join(home, name), []byte(content), 0o644)
	}
	return home
}

// jiraKeys lists the issue keys in home's Jira Parquet.
func jiraKeys(home string) string {
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	var s sql.NullString
	db.QueryRow("SELECT string_agg(issue_key, ',' ORDER BY issue_key) FROM read_parquet('" + filepath.Join(home, "data/parquet/jira/issues/*.parquet") + "')").Scan(&s)
	return s.String
}

func TestJiraBackfillAndCheck(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	home := jiraHome(t, fake)
	if code := run([]string{"--home", home, "jira", "backfill", "--keys", "SUP-1,SUP-2"}); code != 0 {
		t.Fatalf("backfill exit %d", code)
	}
	keys := func() string { return jiraKeys(home) }
	if got := keys(); got != "SUP-1,SUP-2" {
		t.Fatalf("after backfill: %q", got)
	}
	// The check finds SUP-3 and SUP-4 missing and repairs them through the pipeline.
	if code := run([]string{"--home", home, "jira", "check", "--jql", "project = SUP"}); code != 0 {
		t.Fatalf("check exit %d", code)
	}
	if got := keys(); got != "SUP-1,SUP-2,SUP-3,SUP-4" {
		t.Errorf("after check: %q", got)
	}
	b, err := os.ReadFile(filepath.Join(home, "data/raw/jira/_consistency_report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Discrepancies struct {
			MissingInJSON []string `json:"missing_in_json"`
		} `json:"discrepancies"`
		AlertLevel string `json:"alert_level"`
	}
	json.Unmarshal(b, &rep)
	if strings.Join(rep.Discrepancies.MissingInJSON, ",") != "SUP-3,SUP-4" || rep.AlertLevel != "INFO" {
		t.Errorf("report = %s", b)
	}
}

// While the server runs (and holds the store), `analyst jira backfill|check` go through its API.
func TestJiraCommandsWhileServing(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	home := jiraHome(t, fake)
	const token = "ada_jira_cli_test_token_0123456789abcdefghijk"
	srv := startServer(t, home, token)
	t.Setenv("ANALYST_SERVER", srv.URL)
	t.Setenv("ANALYST_ADMIN_TOKEN", token)
	waitKeys := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); jiraKeys(home) != want; {
			if time.Now().After(deadline) {
				t.Fatalf("Jira Parquet holds %q, want %q", jiraKeys(home), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	out, errOut, code := analyst(t, home, "jira", "backfill", "--keys", "SUP-1,SUP-2")
	if code != 0 || !strings.Contains(out, "queued 2 issues; the server fetches them") {
		t.Fatalf("backfill through the API: exit %d\n%s%s", code, out, errOut)
	}
	waitKeys("SUP-1,SUP-2")
	out, errOut, code = analyst(t, home, "jira", "check", "--jql", "project = SUP")
	if code != 0 || !strings.Contains(out, "missing in raw JSON: 2 SUP-3,SUP-4") {
		t.Fatalf("check through the API: exit %d\n%s%s", code, out, errOut)
	}
	waitKeys("SUP-1,SUP-2,SUP-3,SUP-4")
	if _, errOut, code := analyst(t, home, "jira", "check", "--token", "ada_wrong"); code == 0 || !strings.Contains(errOut, "invalid or revoked token") {
		t.Fatalf("a wrong token: exit %d: %s", code, errOut)
	}
}
