package handlers_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/store"
)

const jiraSecret = "webhook-s3cret"

// jiraInstance writes an instance whose jira block points at fake.
func jiraInstance(t *testing.T, home, fakeURL string) *config.Config {
	t.Helper()
	testenv.WriteFile(t, filepath.Join(home, "config/instance.yaml"), fmt.Sprintf(`instance: {name: Jira test}
data_source:
  type: csv
  csv: {path: source}
jira:
  domain: acme.atlassian.net
  base_url: %[1]s
  sla_base_url: %[1]s
  cloud_id: %[2]s
  email: %[3]s
  api_token: %[4]s
  sla_email: %[5]s
  sla_api_token: %[6]s
  webhook_secret: %[7]s
`, fakeURL, jiratest.CloudID, jiratest.Email, jiratest.Token, jiratest.SLAEmail, jiratest.SLAToken, jiraSecret))
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "# Tables\n\n```yaml\ntables:\n  - {id: shop.orders, name: orders, folder: shop, primary_key: id, sync_strategy: full_refresh, csv: {path: orders.csv}}\n```\n")
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// jiraServer is a running instance: the pipeline with the Jira stages and the webhook route.
type jiraServer struct {
	cfg  *config.Config
	jira *handlers.Jira
	http *httptest.Server
	db   *bolt.DB
	log  *pipeline.BoltPubSub
}

// startJira opens home's store and runs the whole chain plus the Jira stages; stop closes all.
func startJira(t testing.TB, cfg *config.Config, client *jira.Client) (*jiraServer, func()) {
	db, err := store.OpenDB(cfg.Paths.Store)
	if err != nil {
		t.Fatal(err)
	}
	log, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := store.NewRuns(db)
	if err != nil {
		t.Fatal(err)
	}
	env := handlers.NewEnv(cfg, runs, nil)
	r, err := pipeline.NewRouter(log, pipeline.RouterConfig{MaxRetries: 2, InitialInterval: 10 * time.Millisecond, OnStage: env.TrackStage})
	if err != nil {
		t.Fatal(err)
	}
	handlers.Register(r, env)
	j, err := handlers.NewJira(handlers.JiraOptions{Config: cfg, DB: db, Log: log, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Register(r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	<-r.Running()
	m := mux.NewRouter()
	portal.JiraRoutes(m, cfg, j, nil)
	srv := httptest.NewServer(m)
	stop := func() {
		srv.Close()
		cancel()
		r.Close()
		log.Close()
		env.Close()
		store.CloseDB(db)
	}
	return &jiraServer{cfg: cfg, jira: j, http: srv, db: db, log: log}, stop
}

func testClient(fake *jiratest.Server) *jira.Client {
	return &jira.Client{
		BaseURL: fake.URL, Email: jiratest.Email, Token: jiratest.Token,
		SLABaseURL: fake.URL, CloudID: jiratest.CloudID, SLAEmail: jiratest.SLAEmail, SLAToken: jiratest.SLAToken,
		MaxRetryWait: 20 * time.Millisecond,
	}
}

func newJiraTest(t *testing.T) (*jiratest.Server, *jiraServer) {
	t.Helper()
	fake := jiratest.New()
	t.Cleanup(fake.Close)
	cfg := jiraInstance(t, t.TempDir(), fake.URL)
	s, stop := startJira(t, cfg, testClient(fake))
	t.Cleanup(stop)
	return fake, s
}

// post sends a signed webhook and returns the status and reply.
func (s *jiraServer) post(t testing.TB, body []byte, headers ...string) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/webhooks/jira", bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", jiratest.Sign(jiraSecret, body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (s *jiraServer) webhook(t testing.TB, event string, issue map[string]any, extra map[string]any) {
	t.Helper()
	if code, out := s.post(t, jiratest.Webhook(event, issue, extra)); code != http.StatusAccepted {
		t.Fatalf("%s: %d %v", event, code, out)
	}
}

// rows runs a DuckDB query over one Jira table (all months) and returns the first column.
func (s *jiraServer) rows(t testing.TB, table, sel, where string) []string {
	t.Helper()
	glob := filepath.Join(s.cfg.Paths.Parquet, "jira", table, "*.parquet")
	if m, _ := filepath.Glob(glob); len(m) == 0 {
		return nil
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := fmt.Sprintf("SELECT %s FROM read_parquet('%s') WHERE %s ORDER BY 1", sel, glob, where)
	// A month file replaced while DuckDB reads it (it may open a file more than once) fails the
	// query; the next read sees the new file.
	for attempt := 0; ; attempt++ {
		out, err := queryColumn(db, q)
		if err == nil {
			return out
		}
		if attempt == 5 {
			t.Fatalf("%s: %v", q, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func queryColumn(db *sql.DB, q string) ([]string, error) {
	r, err := db.Query(q)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var v sql.NullString
		if err := r.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v.String)
	}
	return out, r.Err()
}

// waitRows waits until the query on table gives want. A month's six files are replaced one
// after the other, so one table can show a change a moment before another.
func (s *jiraServer) waitRows(t testing.TB, table, sel, where, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got = join(s.rows(t, table, sel, where)); got == want || (want == "0" && got == "") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: SELECT %s WHERE %s = %q, want %q", table, sel, where, got, want)
			return
		}
	}
}

func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func join(s []string) string { return strings.Join(s, ",") }

func TestJiraWebhookSignatures(t *testing.T) {
	fake, s := newJiraTest(t)
	issue := fake.NewIssue("SUP-1", 10001, "2025-01-15T10:00:00.000+0100", jiratest.Shape{})
	fake.Put(issue)
	body := jiratest.Webhook("jira:issue_updated", issue, nil)
	sig := jiratest.Sign(jiraSecret, body)
	bare := strings.TrimPrefix(sig, "sha256=")
	cases := []struct {
		name    string
		headers []string
		body    []byte
		want    int
	}{
		{"X-Hub-Signature-256 with prefix", []string{"X-Hub-Signature-256", sig}, body, 202},
		{"without prefix", []string{"X-Hub-Signature-256", bare}, body, 202},
		{"upper-case hex", []string{"X-Hub-Signature-256", "sha256=" + strings.ToUpper(bare)}, body, 202},
		{"fallback X-Hub-Signature", []string{"X-Hub-Signature-256", "", "X-Hub-Signature", sig}, body, 202},
		{"missing", []string{"X-Hub-Signature-256", ""}, body, 401},
		{"wrong secret", []string{"X-Hub-Signature-256", jiratest.Sign("other", body)}, body, 401},
		{"body changed", []string{"X-Hub-Signature-256", sig}, append([]byte(" "), body...), 401},
		{"not hex", []string{"X-Hub-Signature-256", "sha256=zz"}, body, 401},
		{"bad JSON", []string{"X-Hub-Signature-256", jiratest.Sign(jiraSecret, []byte("{nope"))}, []byte("{nope"), 400},
		{"JSON array", []string{"X-Hub-Signature-256", jiratest.Sign(jiraSecret, []byte("[1]"))}, []byte("[1]"), 400},
		{"JSON null", []string{"X-Hub-Signature-256", jiratest.Sign(jiraSecret, []byte("null"))}, []byte("null"), 400},
		{"bad key", nil, []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"../../etc"}}`), 400},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/webhooks/jira", bytes.NewReader(c.body))
		if c.headers == nil {
			req.Header.Set("X-Hub-Signature-256", jiratest.Sign(jiraSecret, c.body))
		}
		for i := 0; i < len(c.headers); i += 2 {
			if c.headers[i+1] != "" {
				req.Header.Set(c.headers[i], c.headers[i+1])
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, resp.StatusCode, out, c.want)
		}
		if resp.StatusCode >= 400 && out["error"] == nil {
			t.Errorf("%s: error reply is not {\"error\": ...}: %v", c.name, out)
		}
	}
	big := bytes.Repeat([]byte(" "), portal.MaxJiraWebhook+1)
	if code, _ := s.post(t, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("11 MiB body: %d, want 413", code)
	}
	waitUntil(t, "SUP-1 in Parquet", 10*time.Second, func() bool { return join(s.rows(t, "issues", "issue_key", "true")) == "SUP-1" })
}

func TestJiraWebhookConfigurationErrors(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	home := t.TempDir()
	cfg := jiraInstance(t, home, fake.URL)
	body := []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"SUP-1"}}`)
	serve := func(cfg *config.Config, intake portal.JiraIntake, sign bool) int {
		m := mux.NewRouter()
		portal.JiraRoutes(m, cfg, intake, nil)
		req := httptest.NewRequest(http.MethodPost, "/webhooks/jira", bytes.NewReader(body))
		if sign {
			req.Header.Set("X-Hub-Signature-256", jiratest.Sign(jiraSecret, body))
		}
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := serve(cfg, nil, true); code != 503 {
		t.Errorf("no intake: %d, want 503", code)
	}
	s, stop := startJira(t, cfg, &jira.Client{}) // no credentials
	defer stop()
	if code := serve(cfg, s.jira, true); code != 503 {
		t.Errorf("jira API not configured: %d, want 503", code)
	}
	unsigned := *cfg
	unsigned.Instance.Jira.WebhookSecret = ""
	if code := serve(&unsigned, s.jira, false); code != 503 {
		t.Errorf("no secret and allow_unsigned unset: %d, want 503 (a secret is required)", code)
	}
	unsigned.Instance.Jira.AllowUnsigned = true
	if code := serve(&unsigned, s.jira, false); code != 503 {
		t.Errorf("unsigned allowed but the API is not configured: %d, want 503", code)
	}
}

func TestJiraEveryEventType(t *testing.T) {
	fake, s := newJiraTest(t)
	a := fake.NewIssue("SUP-10", 10010, "2025-01-15T10:00:00.000+0100", jiratest.Shape{Comments: 8, Histories: 14, Attachments: 1, Links: true})
	b := fake.NewIssue("SUP-11", 10011, "2025-01-20T10:00:00.000+0100", jiratest.Shape{Comments: 1})
	fake.Put(a)
	fake.Put(b)
	fake.SetRemoteLinks("SUP-10", []any{map[string]any{"id": 1, "object": map[string]any{"url": "https://x.example/1", "title": "X"}}})

	s.webhook(t, "jira:issue_created", a, nil)
	s.webhook(t, "jira:issue_created", b, nil)
	waitUntil(t, "both issues", 10*time.Second, func() bool { return join(s.rows(t, "issues", "issue_key", "true")) == "SUP-10,SUP-11" })
	s.waitRows(t, "comments", "count(*)", "issue_key = 'SUP-10'", "8") // all 8: Jira embedded 5
	waitUntil(t, "the attachment row", 10*time.Second, func() bool { return len(s.rows(t, "attachments", "local_path", "issue_key = 'SUP-10'")) == 1 })
	if got := s.rows(t, "attachments", "local_path", "issue_key = 'SUP-10'"); len(got) != 1 || !strings.HasPrefix(got[0], "attachments/SUP-10/") {
		t.Errorf("attachment local_path = %v: downloaded in the same run", got)
	}
	if got := s.rows(t, "issues", "first_response_breached || '/' || first_response_elapsed_millis", "issue_key = 'SUP-10'"); join(got) != "False/3600000" {
		t.Errorf("SLA through the service account = %v", got)
	}

	// Each non-deleting event re-fetches the issue; none deletes it.
	step := 0
	for _, ev := range []struct {
		event string
		extra map[string]any
	}{
		{"jira:issue_updated", map[string]any{"changelog": map[string]any{"items": []any{map[string]any{"field": "summary"}}}}},
		{"comment_created", map[string]any{"comment": map[string]any{"id": "1"}}},
		{"comment_updated", map[string]any{"comment": map[string]any{"id": "1"}}},
		{"comment_deleted", map[string]any{"comment": map[string]any{"id": "1"}}},
		{"attachment_deleted", nil},
		{"worklog_updated", nil},
	} {
		step++
		summary := fmt.Sprintf("step %d %s", step, ev.event)
		fake.Update("SUP-11", func(is map[string]any) { is["fields"].(map[string]any)["summary"] = summary })
		s.webhook(t, ev.event, b, ev.extra)
		waitUntil(t, ev.event+" applied", 10*time.Second, func() bool {
			return join(s.rows(t, "issues", "summary", "issue_key = 'SUP-11'")) == summary
		})
	}
	// Events without an issue object: a worklog names its issue id, a link both ends.
	fake.Update("SUP-10", func(is map[string]any) { is["fields"].(map[string]any)["summary"] = "via worklog" })
	s.webhook(t, "worklog_created", nil, map[string]any{"worklog": map[string]any{"id": "5", "issueId": "10010"}})
	waitUntil(t, "worklog event", 10*time.Second, func() bool { return join(s.rows(t, "issues", "summary", "issue_key = 'SUP-10'")) == "via worklog" })
	for _, k := range []string{"SUP-10", "SUP-11"} {
		fake.Update(k, func(is map[string]any) { is["fields"].(map[string]any)["summary"] = "linked" })
	}
	s.webhook(t, "issuelink_created", nil, map[string]any{"issueLink": map[string]any{"id": 9, "sourceIssueId": json.Number("10010"), "destinationIssueId": json.Number("10011")}})
	waitUntil(t, "link event", 10*time.Second, func() bool { return join(s.rows(t, "issues", "summary", "true")) == "linked,linked" })
	if code, out := s.post(t, jiratest.Webhook("attachment_created", nil, map[string]any{"attachment": map[string]any{"id": "7"}})); code != 202 || out["status"] != "ignored" {
		t.Errorf("attachment_created without an issue: %d %v, want 202 ignored", code, out)
	}

	// Only jira:issue_deleted deletes: all six tables lose the issue, the raw file is a tombstone.
	fake.Delete("SUP-10")
	s.webhook(t, "jira:issue_deleted", a, nil)
	waitUntil(t, "delete", 10*time.Second, func() bool { return join(s.rows(t, "issues", "issue_key", "true")) == "SUP-11" })
	for _, table := range jira.TableNames {
		s.waitRows(t, table, "count(*)", "issue_key = 'SUP-10'", "0") // no row of the deleted issue
	}
	raw, err := jira.RawStore{Dir: filepath.Join(s.jira.RawDir(), "issues")}.Read("SUP-10")
	if err != nil || raw[jira.KeyDeletedAt] == nil {
		t.Errorf("raw SUP-10 = %v %v, want a tombstone", err, raw[jira.KeyDeletedAt])
	}
	// A late update for the deleted issue does not bring it back (Jira answers 404).
	s.webhook(t, "comment_created", a, nil)
	s.webhook(t, "jira:issue_updated", b, nil)
	time.Sleep(200 * time.Millisecond)
	if got := join(s.rows(t, "issues", "issue_key", "true")); got != "SUP-11" {
		t.Errorf("after a late update: %s", got)
	}
}

func TestJiraMoveLeavesNoStaleRows(t *testing.T) {
	fake, s := newJiraTest(t)
	is := fake.NewIssue("SUP-5", 10005, "2025-03-02T10:00:00.000+0000", jiratest.Shape{Comments: 2, Histories: 1, Links: true})
	fake.Put(is)
	fake.SetRemoteLinks("SUP-5", []any{map[string]any{"id": 3, "object": map[string]any{"url": "https://x.example/3"}}})
	s.webhook(t, "jira:issue_created", is, nil)
	waitUntil(t, "SUP-5", 10*time.Second, func() bool { return join(s.rows(t, "issues", "issue_key", "true")) == "SUP-5" })

	fake.Move("SUP-5", "OPS-9")
	moved := fake.Issue("OPS-9")
	s.webhook(t, "jira:issue_updated", moved, map[string]any{"changelog": map[string]any{"items": []any{
		map[string]any{"field": "Key", "fieldtype": "jira", "fromString": "SUP-5", "toString": "OPS-9"}}}})
	waitUntil(t, "OPS-9 only", 10*time.Second, func() bool { return join(s.rows(t, "issues", "issue_key", "true")) == "OPS-9" })
	for _, table := range jira.TableNames {
		s.waitRows(t, table, "count(*)", "issue_key = 'SUP-5'", "0") // no stale row of the old key
	}
	s.waitRows(t, "comments", "count(*)", "issue_key = 'OPS-9'", "2")

	// A move Jira reports only through the old key (the fake resolves it to the new one).
	fake.Move("OPS-9", "FIN-2")
	s.webhook(t, "comment_created", is, nil) // the stale payload names SUP-5
	waitUntil(t, "FIN-2 only", 10*time.Second, func() bool { return join(s.rows(t, "issues", "issue_key", "true")) == "FIN-2" })
	s.waitRows(t, "remote_links", "issue_key", "true", "FIN-2")
}

func TestJiraConcurrentWebhooksOneMonth(t *testing.T) {
	fake, s := newJiraTest(t)
	fake.Latency = 5 * time.Millisecond
	const n = 50
	var issues []map[string]any
	for i := range n {
		is := fake.NewIssue(fmt.Sprintf("SUP-%d", 100+i), 20000+i, fmt.Sprintf("2025-01-%02dT10:00:00.000+0000", 1+i%28), jiratest.Shape{Comments: 2, Histories: 2})
		fake.Put(is)
		issues = append(issues, is)
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i, is := range issues {
		wg.Go(func() { codes[i], _ = s.post(t, jiratest.Webhook("jira:issue_created", is, nil)) })
	}
	wg.Wait()
	for i, c := range codes {
		if c != 202 {
			t.Fatalf("webhook %d: %d", i, c)
		}
	}
	waitUntil(t, "all 50 issues", 20*time.Second, func() bool {
		return join(s.rows(t, "issues", "count(DISTINCT issue_key) || '/' || count(*)", "true")) == "50/50"
	})
	s.waitRows(t, "comments", "count(*)", "true", "100")
	if files, _ := filepath.Glob(filepath.Join(s.jira.ParquetDir(), "issues", "*")); len(files) != 1 || filepath.Base(files[0]) != "2025-01.parquet" {
		t.Errorf("issues files = %v", files)
	}
}

func TestJiraDedupAndKeptLinks(t *testing.T) {
	fake, s := newJiraTest(t)
	is := fake.NewIssue("SUP-3", 10003, "2025-01-15T10:00:00.000+0000", jiratest.Shape{})
	fake.Put(is)
	fake.SetRemoteLinks("SUP-3", []any{map[string]any{"id": 1, "object": map[string]any{"url": "https://x.example/1"}}})
	body := jiratest.Webhook("jira:issue_updated", is, nil)
	if code, out := s.post(t, body, "X-Atlassian-Webhook-Identifier", "delivery-1"); code != 202 || out["status"] != "accepted" {
		t.Fatalf("first delivery: %d %v", code, out)
	}
	waitUntil(t, "SUP-3", 10*time.Second, func() bool { return len(s.rows(t, "remote_links", "url", "true")) == 1 })
	if code, out := s.post(t, body, "X-Atlassian-Webhook-Identifier", "delivery-1"); code != 202 || out["status"] != "duplicate" {
		t.Errorf("redelivery: %d %v, want 202 duplicate", code, out)
	}
	time.Sleep(100 * time.Millisecond)
	if n := fake.Calls("issue"); n != 1 {
		t.Errorf("issue fetched %d times, want 1 (the redelivery is a duplicate)", n)
	}
	// A failed remote-link fetch keeps the links we had.
	fake.FailRemoteLinks(10)
	fake.Update("SUP-3", func(is map[string]any) { is["fields"].(map[string]any)["summary"] = "changed" })
	s.webhook(t, "jira:issue_updated", is, nil)
	waitUntil(t, "update", 10*time.Second, func() bool { return join(s.rows(t, "issues", "summary", "true")) == "changed" })
	if got := s.rows(t, "remote_links", "url", "true"); join(got) != "https://x.example/1" {
		t.Errorf("remote links after a failed fetch = %v, want the previous one kept", got)
	}
}

func TestJiraSLAPollHeals(t *testing.T) {
	fake, s := newJiraTest(t)
	is := fake.NewIssue("SUP-8", 10008, "2025-01-15T10:00:00.000+0000", jiratest.Shape{})
	fake.Put(is)
	s.webhook(t, "jira:issue_created", is, nil)
	waitUntil(t, "SUP-8", 10*time.Second, func() bool { return join(s.rows(t, "issues", "status", "true")) == "In Progress" })
	// Jira resolves the issue but the webhook is lost; the SLA poll heals status and resolution.
	fake.Update("SUP-8", func(is map[string]any) {
		f := is["fields"].(map[string]any)
		f["status"] = map[string]any{"name": "Done", "statusCategory": map[string]any{"name": "Done"}}
		f["resolution"] = map[string]any{"name": "Fixed"}
		f["resolutiondate"] = "2025-01-16T09:00:00.000+0000"
		f["summary"] = "not part of the poll"
	})
	n, err := s.jira.PollSLA(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("poll queued %d, %v; want the one open issue with SLA data", n, err)
	}
	waitUntil(t, "healed", 10*time.Second, func() bool {
		return join(s.rows(t, "issues", "status || '/' || resolution || '/' || resolved_at::VARCHAR || '/' || summary", "true")) ==
			"Done/Fixed/2025-01-16 09:00:00+00/Summary of SUP-8"
	})
	if n, err := s.jira.PollSLA(context.Background()); err != nil || n != 0 {
		t.Errorf("second poll queued %d, %v; a Done issue is not polled", n, err)
	}
}

func TestJiraAnnouncesCatalogueTablesOncePerInterval(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	home := t.TempDir()
	jiraInstance(t, home, fake.URL)
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "# Tables\n\n```yaml\ntables:\n"+
		"  - {id: shop.orders, name: orders, folder: shop, primary_key: id, sync_strategy: full_refresh, csv: {path: orders.csv}}\n"+
		"  - {id: jira.issues, name: jira_issues, folder: jira, primary_key: issue_key, sync_strategy: full_refresh, csv: {path: none.csv}}\n```\n")
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	s, stop := startJira(t, cfg, testClient(fake))
	defer stop()
	for i := range 5 {
		is := fake.NewIssue(fmt.Sprintf("SUP-%d", i+1), 40000+i, "2025-01-15T10:00:00.000+0000", jiratest.Shape{})
		fake.Put(is)
		s.webhook(t, "jira:issue_created", is, nil)
		time.Sleep(30 * time.Millisecond)
	}
	waitUntil(t, "five issues", 10*time.Second, func() bool { return join(s.rows(t, "issues", "count(*)", "true")) == "5" })
	profiles := filepath.Join(cfg.Paths.Metadata, "profiles.json")
	waitUntil(t, "jira_issues profiled", 10*time.Second, func() bool {
		b, _ := os.ReadFile(profiles)
		return strings.Contains(string(b), `"jira_issues"`)
	})
	n := 0
	recs, _ := s.log.Read(pipeline.TopicTableConverted, 0, 0)
	for _, r := range recs {
		if r.Metadata.Get(pipeline.MetaTable) == "jira_issues" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("jira_issues announced %d times for 5 quick changes, want 1 (the rest held for 30 s)", n)
	}
	if len(recs) != n {
		t.Errorf("%d table.converted events, want only jira_issues's (other Jira tables are not in the catalogue)", len(recs))
	}
}
