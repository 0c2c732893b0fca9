package jira_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
)

// wantSchema is the reference's schema as DuckDB reads it back.
var wantSchema = map[string]string{
	"issues": "issue_key VARCHAR, issue_id VARCHAR, issue_url VARCHAR, summary VARCHAR, description VARCHAR, issue_type VARCHAR, " +
		"status VARCHAR, status_category VARCHAR, priority VARCHAR, resolution VARCHAR, project_key VARCHAR, project_name VARCHAR, " +
		"creator_email VARCHAR, creator_name VARCHAR, reporter_email VARCHAR, reporter_name VARCHAR, assignee_email VARCHAR, " +
		"assignee_name VARCHAR, created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, " +
		"resolved_at TIMESTAMP WITH TIME ZONE, due_date VARCHAR, labels VARCHAR, attachment_count BIGINT, comment_count BIGINT, " +
		"issuelink_count BIGINT, request_type VARCHAR, request_status VARCHAR, severity VARCHAR, triage VARCHAR, " +
		"configuration_item VARCHAR, participants VARCHAR, organizations VARCHAR, spam VARCHAR, context VARCHAR, custom_url VARCHAR, " +
		"slack_link VARCHAR, technical_issue_category VARCHAR, email_address VARCHAR, satisfaction BIGINT, " +
		"first_response_breached VARCHAR, first_response_goal_millis BIGINT, first_response_elapsed_millis BIGINT, " +
		"time_to_resolution_breached VARCHAR, time_to_resolution_goal_millis BIGINT, time_to_resolution_elapsed_millis BIGINT, " +
		"l3_team VARCHAR, _synced_at VARCHAR, _raw_file VARCHAR",
	"comments": "comment_id VARCHAR, issue_key VARCHAR, author_email VARCHAR, author_name VARCHAR, body VARCHAR, " +
		"created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, update_author_email VARCHAR",
	"attachments": "attachment_id VARCHAR, issue_key VARCHAR, filename VARCHAR, local_path VARCHAR, hierarchical_path VARCHAR, " +
		"size_bytes BIGINT, mime_type VARCHAR, author_email VARCHAR, created_at TIMESTAMP WITH TIME ZONE, content_url VARCHAR, thumbnail_url VARCHAR",
	"changelog": "change_id VARCHAR, issue_key VARCHAR, author_email VARCHAR, author_name VARCHAR, field_name VARCHAR, " +
		"field_type VARCHAR, from_value VARCHAR, to_value VARCHAR, changed_at TIMESTAMP WITH TIME ZONE",
	"issuelinks": "issue_key VARCHAR, link_id VARCHAR, link_type VARCHAR, direction VARCHAR, linked_issue_key VARCHAR, " +
		"linked_issue_summary VARCHAR, linked_issue_status VARCHAR, linked_issue_priority VARCHAR",
	"remote_links": "issue_key VARCHAR, remote_link_id VARCHAR, url VARCHAR, title VARCHAR, application_name VARCHAR, application_type VARCHAR",
}

// fetchRaw gets an issue through the client as the server stores it.
func fetchRaw(t *testing.T, fake *jiratest.Server, key string) jira.Issue {
	t.Helper()
	c := client(fake)
	issue, err := c.Issue(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	sla, err := c.SLA(context.Background(), key, jira.SLAFields)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sla {
		issue["fields"].(map[string]any)[k] = v
	}
	links, err := c.RemoteLinks(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	issue[jira.KeyRemoteLinks] = links
	issue[jira.KeySyncedAt] = jira.SyncedAt(time.Date(2025, 2, 3, 11, 6, 52, 123456000, time.UTC))
	return issue
}

func TestSixTablesExactColumnsAndValues(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	fake.Put(fake.NewIssue("SUP-14991", 14991, "2025-02-01T00:30:00.999+0100", jiratest.Shape{Comments: 7, Histories: 12, Attachments: 1, Links: true}))
	fake.SetRemoteLinks("SUP-14991", []any{map[string]any{"id": 77, "object": map[string]any{"url": "https://gh.example.com/pr/1", "title": "PR 1"},
		"application": map[string]any{"name": "GitHub", "type": "com.github"}}})
	raw := fetchRaw(t, fake, "SUP-14991")

	dir, att := t.TempDir(), t.TempDir()
	// The attachment is on disk: local_path and hierarchical_path are filled.
	a := raw["fields"].(map[string]any)["attachment"].([]any)[0].(map[string]any)
	p := filepath.Join(att, jira.AttachmentPath("SUP-14991", a["id"].(string), a["filename"].(string)))
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("x"), 0o644)

	tr := jira.NewTransformer("acme.atlassian.net", nil, att)
	rows, err := tr.Transform(raw)
	if err != nil {
		t.Fatal(err)
	}
	month := jira.Month(raw)
	if month != "2025-02" {
		t.Fatalf("month = %q: the wall clock in Jira's offset decides, not UTC", month)
	}
	if _, err := jira.WritePartition(context.Background(), dir, tr.Tables(), month, map[string]bool{"SUP-14991": true}, rows); err != nil {
		t.Fatal(err)
	}
	db := duck(t)
	for table, want := range wantSchema {
		path := jira.PartitionPath(dir, table, month)
		r, err := db.Query("DESCRIBE SELECT * FROM read_parquet('" + path + "')")
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		var got []string
		for r.Next() {
			var name, typ string
			var null, key, def, extra any
			r.Scan(&name, &typ, &null, &key, &def, &extra)
			got = append(got, name+" "+typ)
		}
		r.Close()
		if strings.Join(got, ", ") != want {
			t.Errorf("%s columns:\n got %s\nwant %s", table, strings.Join(got, ", "), want)
		}
	}
	if n := len(strings.Split(wantSchema["issues"], ", ")); n != 49 {
		t.Fatalf("issues has %d columns, want 49", n)
	}

	var (
		desc, labels, participants, orgs, triage, ctx, reqType, reqStatus, sev, frBreached, ttrBreached, url, synced, rawFile, l3 string
		created                                                                                                                   time.Time
		frGoal, frElapsed, ttrGoal, ttrElapsed, sat, comments, atts, links                                                        int64
		resolved                                                                                                                  *time.Time
	)
	err = db.QueryRow(`SELECT description, labels, participants, organizations, triage, context, request_type, request_status, severity,
		first_response_breached, time_to_resolution_breached, issue_url, _synced_at, _raw_file, l3_team, created_at,
		first_response_goal_millis, first_response_elapsed_millis, time_to_resolution_goal_millis, time_to_resolution_elapsed_millis,
		satisfaction, comment_count, attachment_count, issuelink_count, resolved_at
		FROM read_parquet('`+jira.PartitionPath(dir, "issues", month)+`')`).Scan(&desc, &labels, &participants, &orgs, &triage, &ctx,
		&reqType, &reqStatus, &sev, &frBreached, &ttrBreached, &url, &synced, &rawFile, &l3, &created,
		&frGoal, &frElapsed, &ttrGoal, &ttrElapsed, &sat, &comments, &atts, &links, &resolved)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	check("description", desc, "Hello @User agent, see the docs (https://docs.example.com/x)\nSecond line\nthird")
	check("labels", labels, `["billing", "\u010de\u0161tina"]`)
	check("participants", participants, `["p1@example.com", null]`)
	check("organizations", orgs, `["Acme Corp"]`)
	check("triage", triage, `["Needs triage", "Billing"]`)
	check("context", ctx, "Context here")
	check("request_type", reqType+"/"+reqStatus, "Get IT help/Waiting for support")
	check("severity", sev, "Sev 2")
	check("l3_team", l3, "Team Blue")
	check("first_response", []any{frBreached, frGoal, frElapsed}, []any{"False", int64(14400000), int64(3600000)})
	check("time_to_resolution (last completed cycle)", []any{ttrBreached, ttrGoal, ttrElapsed}, []any{"True", int64(28800000), int64(30000000)})
	check("issue_url", url, "https://acme.atlassian.net/browse/SUP-14991")
	check("_synced_at", synced, "2025-02-03T11:06:52.123456")
	check("_raw_file", rawFile, "SUP-14991.json")
	check("created_at", created.UTC(), time.Date(2025, 1, 31, 23, 30, 0, 0, time.UTC))
	check("counts", []int64{sat, comments, atts, links}, []int64{4, 7, 1, 2})
	check("resolved_at", resolved, (*time.Time)(nil))

	count := func(table, where string) int {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM read_parquet('" + jira.PartitionPath(dir, table, month) + "') WHERE " + where).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		return n
	}
	check("comments (paged past the 5 embedded)", count("comments", "body LIKE 'Comment % on SUP-14991' AND author_email = 'agent@example.com'"), 7)
	check("changelog items", count("changelog", "field_name IN ('status','assignee') AND changed_at IS NOT NULL"), 24)
	check("changelog null from", count("changelog", "field_name = 'assignee' AND from_value IS NULL AND to_value = 'User agent'"), 12)
	check("attachment", count("attachments", "local_path = 'attachments/SUP-14991/"+a["id"].(string)+"_screen shot 0.png' AND hierarchical_path = '14/991/"+a["id"].(string)+"_screen shot 0.png' AND size_bytes > 0"), 1)
	check("issuelinks", count("issuelinks", "(direction = 'inward' AND linked_issue_key = 'SUP-1' AND link_type = 'Blocks' AND linked_issue_status = 'Done') OR (direction = 'outward' AND linked_issue_key = 'OPS-7' AND linked_issue_priority IS NULL)"), 2)
	check("remote_links", count("remote_links", "remote_link_id = '77' AND url = 'https://gh.example.com/pr/1' AND application_name = 'GitHub'"), 1)
}

func TestWritePartitionReplacesRemovesAndRefusesCorruptFiles(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	tr := jira.NewTransformer("acme.atlassian.net", map[string]string{"story_points": "customfield_10016"}, "")
	dir := t.TempDir()
	ctx := context.Background()
	write := func(keys ...string) {
		t.Helper()
		all := jira.Rows{}
		replace := map[string]bool{}
		for _, k := range keys {
			fake.Put(fake.NewIssue(k, 1, "2025-01-15T10:00:00.000+0000", jiratest.Shape{Comments: 2}))
			raw := fetchRaw(t, fake, k)
			raw["fields"].(map[string]any)["customfield_10016"] = 5
			rows, err := tr.Transform(raw)
			if err != nil {
				t.Fatal(err)
			}
			for tb, r := range rows {
				all[tb] = append(all[tb], r...)
			}
			replace[k] = true
		}
		if _, err := jira.WritePartition(ctx, dir, tr.Tables(), "2025-01", replace, all); err != nil {
			t.Fatal(err)
		}
	}
	db := duck(t)
	keys := func(table string) string {
		var s *string
		db.QueryRow("SELECT string_agg(issue_key, ',' ORDER BY issue_key) FROM read_parquet('" + jira.PartitionPath(dir, table, "2025-01") + "')").Scan(&s)
		if s == nil {
			return ""
		}
		return *s
	}
	write("A-1", "A-2")
	write("A-2")
	if got := keys("issues"); got != "A-1,A-2" {
		t.Errorf("issues = %s", got)
	}
	if got := keys("comments"); got != "A-1,A-1,A-2,A-2" {
		t.Errorf("comments = %s", got)
	}
	var points string
	db.QueryRow("SELECT story_points FROM read_parquet('" + jira.PartitionPath(dir, "issues", "2025-01") + "') WHERE issue_key = 'A-1'").Scan(&points)
	if points != "5" {
		t.Errorf("configured custom field story_points = %q", points)
	}
	// Remove A-1 (a delete): only A-2 stays; then remove A-2: the files go away.
	if _, err := jira.WritePartition(ctx, dir, tr.Tables(), "2025-01", map[string]bool{"A-1": true}, nil); err != nil {
		t.Fatal(err)
	}
	if got := keys("comments"); got != "A-2,A-2" {
		t.Errorf("after delete comments = %s", got)
	}
	if _, err := jira.WritePartition(ctx, dir, tr.Tables(), "2025-01", map[string]bool{"A-2": true}, nil); err != nil {
		t.Fatal(err)
	}
	for _, table := range jira.TableNames {
		if _, err := os.Stat(jira.PartitionPath(dir, table, "2025-01")); !os.IsNotExist(err) {
			t.Errorf("%s: empty month file not removed (%v)", table, err)
		}
	}
	// A corrupt month file is an error and stays as it is (never treated as empty).
	write("A-3")
	bad := jira.PartitionPath(dir, "issues", "2025-01")
	os.WriteFile(bad, []byte("not parquet"), 0o644)
	if _, err := jira.WritePartition(ctx, dir, tr.Tables(), "2025-01", map[string]bool{"A-4": true}, jira.Rows{"issues": nil}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt file: %v, want an error naming it", err)
	}
	if b, _ := os.ReadFile(bad); string(b) != "not parquet" {
		t.Errorf("corrupt file was replaced")
	}
	entries, _ := os.ReadDir(filepath.Dir(bad))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
}

func TestADFText(t *testing.T) {
	doc := map[string]any{"type": "doc", "content": []any{
		map[string]any{"type": "heading", "content": []any{map[string]any{"type": "text", "text": "Title"}}},
		map[string]any{"type": "bulletList", "content": []any{
			map[string]any{"type": "listItem", "content": []any{map[string]any{"type": "paragraph", "content": []any{map[string]any{"type": "text", "text": "one"}}}}},
			map[string]any{"type": "listItem", "content": []any{map[string]any{"type": "paragraph", "content": []any{
				map[string]any{"type": "emoji", "attrs": map[string]any{"shortName": ":smile:", "text": "😄"}},
				map[string]any{"type": "text", "text": " two "},
				map[string]any{"type": "inlineCard", "attrs": map[string]any{"url": "https://x.example/1"}},
			}}}},
		}},
		map[string]any{"type": "paragraph", "content": []any{map[string]any{"type": "date", "attrs": map[string]any{"timestamp": "1736899200000"}},
			map[string]any{"type": "text", "text": " "}, map[string]any{"type": "status", "attrs": map[string]any{"text": "DONE"}}}},
	}}
	want := "Title\n- one\n- 😄 two https://x.example/1\n2025-01-15 DONE"
	if got := jira.ADFText(doc); got != want {
		t.Errorf("ADFText =\n%q\nwant\n%q", got, want)
	}
	if jira.ADFText(nil) != "" || jira.ADFText("plain") != "plain" {
		t.Error("nil or plain string")
	}
}
