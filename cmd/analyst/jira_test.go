package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
)

func TestJiraBackfillAndCheck(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
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
	if code := run([]string{"--home", home, "jira", "backfill", "--keys", "SUP-1,SUP-2"}); code != 0 {
		t.Fatalf("backfill exit %d", code)
	}
	keys := func() string {
		db, _ := sql.Open("duckdb", "")
		defer db.Close()
		var s string
		db.QueryRow("SELECT string_agg(issue_key, ',' ORDER BY issue_key) FROM read_parquet('" + filepath.Join(home, "data/parquet/jira/issues/*.parquet") + "')").Scan(&s)
		return s
	}
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
