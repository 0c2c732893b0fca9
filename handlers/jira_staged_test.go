package handlers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
	"github.com/ai-data-analyst/analyst/internal/testenv"
)

// The rows the fetch stage stages for the writer are exactly what transforming the raw file
// gives: a rewrite from staged rows and one after a restart (from the files) agree.
func TestJiraStagedRowsMatchTheRawFile(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	home := t.TempDir()
	for name, content := range map[string]string{
		"config/instance.yaml": fmt.Sprintf("instance: {name: Staged}\ndata_source: {type: csv, csv: {path: source}}\n"+
			"jira: {domain: acme.atlassian.net, base_url: %[1]s, sla_base_url: %[1]s, cloud_id: %[2]s, email: %[3]s, api_token: %[4]s, sla_email: %[5]s, sla_api_token: %[6]s, webhook_secret: s}\n",
			fake.URL, jiratest.CloudID, jiratest.Email, jiratest.Token, jiratest.SLAEmail, jiratest.SLAToken),
		"docs/data_description.md": "```yaml\ntables:\n  - {id: a.b, name: b, folder: a, primary_key: id, sync_strategy: full_refresh, csv: {path: b.csv}}\n```\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(home, name)), 0o755)
		os.WriteFile(filepath.Join(home, name), []byte(content), 0o644)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.OpenStore(t, cfg.Paths.Store)
	client := &jira.Client{BaseURL: fake.URL, Email: jiratest.Email, Token: jiratest.Token, SLABaseURL: fake.URL,
		CloudID: jiratest.CloudID, SLAEmail: jiratest.SLAEmail, SLAToken: jiratest.SLAToken, MaxRetryWait: 20 * time.Millisecond}
	j, err := NewJira(JiraOptions{Config: cfg, DB: db, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	fake.Put(fake.NewIssue("SUP-1", 10001, "2025-03-02T23:30:00.000-0500", jiratest.Shape{Comments: 7, Histories: 3, Attachments: 1, Links: true}))
	fake.SetRemoteLinks("SUP-1", []any{map[string]any{"id": 77, "object": map[string]any{"url": "https://gh.example.com/pr/1", "title": "PR 1"},
		"application": map[string]any{"name": "GitHub", "type": "com.github"}}})
	if _, err := j.refresh(context.Background(), JiraWebhookReceived{Event: "jira:issue_updated", Issue: "SUP-1"}); err != nil {
		t.Fatal(err)
	}
	staged, ok := j.takeStaged("SUP-1", "2025-03")
	if !ok || staged.month != "2025-03" {
		t.Fatalf("staged = %+v, %v", staged, ok)
	}
	raw, err := j.raw.Read("SUP-1")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := j.tr.Transform(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(staged.rows, fromFile) {
		t.Fatalf("staged rows differ from the raw file's:\n staged %v\n file   %v", staged.rows, fromFile)
	}
	for _, table := range []string{"issues", "comments", "changelog", "attachments", "issuelinks", "remote_links"} {
		if len(fromFile[table]) == 0 {
			t.Errorf("no %s rows: the comparison does not cover them", table)
		}
	}
	// A deleted issue stages nothing: the writer reads its tombstone.
	if _, err := j.deleteIssue("SUP-1", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := j.takeStaged("SUP-1", "2025-03"); ok {
		t.Fatal("a deleted issue still has staged rows")
	}
}
