package jira_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
)

func client(fake *jiratest.Server) *jira.Client {
	return &jira.Client{
		BaseURL: fake.URL, Email: jiratest.Email, Token: jiratest.Token,
		SLABaseURL: fake.URL, CloudID: jiratest.CloudID, SLAEmail: jiratest.SLAEmail, SLAToken: jiratest.SLAToken,
		PageSize: 10, MaxRetryWait: 50 * time.Millisecond,
	}
}

func duck(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestIssuePagesTruncatedListsAndRetries(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	fake.Put(fake.NewIssue("SUP-7", 10007, "2025-01-15T10:00:00.123+0100", jiratest.Shape{Comments: 23, Histories: 31}))
	fake.Throttle(2, "0") // two 429s with Retry-After: 0, then the real reply
	c := client(fake)
	issue, err := c.Issue(context.Background(), "SUP-7")
	if err != nil {
		t.Fatal(err)
	}
	f := issue["fields"].(map[string]any)
	if n := len(f["comment"].(map[string]any)["comments"].([]any)); n != 23 {
		t.Errorf("comments = %d, want all 23 (Jira embeds 5)", n)
	}
	if n := len(issue["changelog"].(map[string]any)["histories"].([]any)); n != 31 {
		t.Errorf("histories = %d, want all 31 (Jira embeds 10)", n)
	}
	if fake.Calls("comment") != 3 || fake.Calls("changelog") != 4 {
		t.Errorf("paged calls comment=%d changelog=%d, want 3 and 4 pages of 10", fake.Calls("comment"), fake.Calls("changelog"))
	}
	if _, ok := f["customfield_10328"].(map[string]any)["errorMessage"]; !ok {
		t.Errorf("personal token should see SLA fields as errors: %v", f["customfield_10328"])
	}

	sla, err := c.SLA(context.Background(), "SUP-7", jira.SLAFields)
	if err != nil {
		t.Fatal(err)
	}
	if sla["customfield_10328"].(map[string]any)["name"] != "Time to first response" || len(sla) != 2 {
		t.Errorf("sla fields = %v", sla)
	}
	if q := fake.Queries(); len(q) != 1 || q[0] != "fields=customfield_10328%2Ccustomfield_10161" {
		t.Errorf("SLA query = %v, want the fields parameter sent", q)
	}

	if _, err := c.Issue(context.Background(), "SUP-404"); !errors.Is(err, jira.ErrNotFound) {
		t.Errorf("missing issue: %v, want ErrNotFound", err)
	}
	fake.Throttle(100, "1")
	start := time.Now()
	c.MaxRetries = 2
	_, err = c.Issue(context.Background(), "SUP-7")
	var se *jira.StatusError
	if !errors.As(err, &se) || se.Status != 429 {
		t.Errorf("endless 429: %v, want the 429 after the retries", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Retry-After 1 s was not capped at MaxRetryWait: took %v", d)
	}
	fake.Throttle(0, "")
	bad := client(fake)
	bad.Token = "wrong"
	if _, err := bad.Issue(context.Background(), "SUP-7"); !errors.As(err, &se) || se.Status != 401 || strings.Contains(err.Error(), "wrong") {
		t.Errorf("bad token: %v", err)
	}
}

func TestSearchPagesWithNextPageToken(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	for i := 1; i <= 25; i++ {
		fake.Put(fake.NewIssue("SUP-"+strconv.Itoa(i), 10000+i, "2025-01-15T10:00:00.000+0000", jiratest.Shape{}))
	}
	var got []string
	pages := 0
	err := client(fake).Search(context.Background(), "project = SUP ORDER BY created", func(keys []string) error {
		pages++
		got = append(got, keys...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 25 || pages != 3 || got[0] != "SUP-1" || got[24] != "SUP-25" {
		t.Errorf("got %d keys in %d pages: %v", len(got), pages, got)
	}
}

func TestDownloadLimitAndAtomic(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	fake.AddFile("1", []byte("0123456789"))
	dir := t.TempDir()
	dst := filepath.Join(dir, jira.AttachmentPath("SUP-1", "1", "../../etc/passwd"))
	if !strings.HasPrefix(dst, filepath.Join(dir, "SUP-1")+string(filepath.Separator)) {
		t.Fatalf("sanitized path escapes: %s", dst)
	}
	n, err := client(fake).Download(context.Background(), fake.FileURL("1"), dst, 10)
	if err != nil || n != 10 {
		t.Fatalf("download: %d %v", n, err)
	}
	big := filepath.Join(dir, "SUP-1", "big")
	if _, err := client(fake).Download(context.Background(), fake.FileURL("1"), big, 9); !errors.Is(err, jira.ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := os.Stat(big); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused download left a file: %v", err)
	}
	if got := jira.SanitizeFilename("a/b\\c\x00d..txt"); got != "a_b_c_d..txt" {
		t.Errorf("sanitize = %q", got)
	}
}
