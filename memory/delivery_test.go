package memory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/memory"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/pull"
	"github.com/ai-data-analyst/analyst/store"
)

// TestRulesReachTheWorkspaceAndLeaveIt runs the whole loop through the real portal and
// `analyst pull`: notes pushed, consent given, collected, voted, pulled as rule files, unvoted
// and removed; mandatory items reach everyone.
func TestRulesReachTheWorkspaceAndLeaveIt(t *testing.T) {
	e := newEnv(t, memory.Options{})
	tokens := map[string]string{}
	for _, u := range []struct{ email, role string }{{"ann@acme.com", store.RoleAnalyst}, {"bob@acme.com", store.RoleAnalyst}, {"boss@acme.com", store.RoleAdmin}} {
		if _, err := e.users.Add(u.email, u.role); err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.users.CreateToken(u.email, "test")
		if err != nil {
			t.Fatal(err)
		}
		tokens[u.email] = tok
	}
	h := portal.New(portal.Deps{Config: e.cfg, Users: e.users, Policy: &access.Policy{Config: e.cfg, Users: e.users}, Memory: e.svc, Logger: quiet})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	call := func(who, method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		return testenv.Call(t, method, srv.URL+path, tokens[who], rd)
	}
	ws := func(who string) string { return filepath.Join(t.TempDir(), who) }
	annDir, bobDir := ws("ann"), ws("bob")
	doPull := func(who, dir string) {
		t.Helper()
		if _, err := pull.Run(context.Background(), pull.Options{Server: srv.URL, Token: tokens[who], Dir: dir, Backoff: time.Millisecond, Logger: quiet}); err != nil {
			t.Fatalf("pull as %s: %v", who, err)
		}
	}
	rules := func(dir string) []string {
		entries, _ := os.ReadDir(filepath.Join(dir, ".claude", "rules"))
		var out []string
		for _, en := range entries {
			out = append(out, en.Name())
		}
		return out
	}

	// Ann consents and pushes her notes; the push asks for a collection.
	if code, b := call("ann@acme.com", "POST", "/api/memory/consent", map[string]any{"consent": true}); code != 200 {
		t.Fatalf("consent: %d %s", code, b)
	}
	os.MkdirAll(annDir, 0o755)
	os.WriteFile(filepath.Join(annDir, "CLAUDE.local.md"), []byte("- Fiscal year: starts in April\n- Churn: no order for 90 days\n"), 0o644)
	if _, err := pull.Push(context.Background(), pull.Options{Server: srv.URL, Token: tokens["ann@acme.com"], Dir: annDir, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(e.rec.topics, pipeline.TopicMemoryCollectRequested) {
		t.Fatalf("pushing notes requested no collection: %v", e.rec.topics)
	}
	if code, b := call("boss@acme.com", "POST", "/api/admin/memory/collect", nil); code != 202 {
		t.Fatalf("collect: %d %s", code, b)
	}
	if code, _ := call("bob@acme.com", "POST", "/api/admin/memory/collect", nil); code != 403 {
		t.Fatalf("an analyst started a collection: %d", code)
	}
	e.collect() // what the pipeline's memory stage does with the request

	var page memory.Page
	code, b := call("bob@acme.com", "GET", "/api/memory/items?sort=score&per_page=10", nil)
	if json.Unmarshal(b, &page); code != 200 || page.Total != 2 {
		t.Fatalf("items: %d %s", code, b)
	}
	ids := map[string]string{}
	for _, it := range page.Items {
		ids[it.Title] = it.ID
	}
	if code, _ := call("bob@acme.com", "GET", "/api/memory/items?per_page=500", nil); code != 400 {
		t.Fatalf("per_page 500: %d", code)
	}
	if code, _ := call("bob@acme.com", "GET", "/api/memory/items?page=x", nil); code != 400 {
		t.Fatalf("page=x: %d", code)
	}

	// Bob upvotes one item: it is in his manifest and lands in .claude/rules after a pull, next
	// to a rule of his own that pull never touches.
	if code, b := call("bob@acme.com", "POST", "/api/memory/vote", map[string]any{"item_id": ids["Churn"], "vote": 1}); code != 200 {
		t.Fatalf("vote: %d %s", code, b)
	}
	if code, _ := call("bob@acme.com", "POST", "/api/memory/vote", map[string]any{"item_id": "km_000000000000", "vote": 1}); code != 404 {
		t.Fatalf("vote on unknown item: %d", code)
	}
	os.MkdirAll(filepath.Join(bobDir, ".claude", "rules"), 0o755)
	os.WriteFile(filepath.Join(bobDir, ".claude", "rules", "mine.md"), []byte("my own rule\n"), 0o644)
	doPull("bob@acme.com", bobDir)
	churn := ids["Churn"] + ".md"
	if got := rules(bobDir); !slices.Equal(got, []string{churn, "mine.md"}) {
		t.Fatalf("bob's rules after upvote: %v", got)
	}
	content, _ := os.ReadFile(filepath.Join(bobDir, ".claude", "rules", churn))
	if !bytes.HasPrefix(content, []byte("# Churn\n")) {
		t.Fatalf("rule file:\n%s", content)
	}
	// Another user cannot fetch Bob's rule file.
	if code, _ := call("ann@acme.com", "GET", "/api/files/rules/"+churn, nil); code != 404 {
		t.Fatalf("ann fetched bob's rule: %d", code)
	}

	// An admin makes the other item mandatory: everyone gets it.
	if code, b := call("boss@acme.com", "POST", "/api/admin/memory/items/"+ids["Fiscal year"]+"/mandatory", map[string]any{"mandatory": true}); code != 200 {
		t.Fatalf("mandatory: %d %s", code, b)
	}
	if code, _ := call("bob@acme.com", "POST", "/api/admin/memory/items/"+ids["Fiscal year"]+"/reject", nil); code != 403 {
		t.Fatalf("an analyst governed an item: %d", code)
	}
	doPull("ann@acme.com", annDir)
	fy := ids["Fiscal year"] + ".md"
	if got := rules(annDir); !slices.Equal(got, []string{fy}) {
		t.Fatalf("ann's rules: %v", got)
	}

	// Bob takes his vote back: the next pull removes the rule, and only that one.
	if code, b := call("bob@acme.com", "POST", "/api/memory/vote", map[string]any{"item_id": ids["Churn"], "vote": 0}); code != 200 {
		t.Fatalf("unvote: %d %s", code, b)
	}
	doPull("bob@acme.com", bobDir)
	if got := rules(bobDir); !slices.Equal(got, []string{fy, "mine.md"}) {
		t.Fatalf("bob's rules after unvote: %v", got)
	}
	// Rejecting the mandatory item takes it out of every workspace.
	if code, b := call("boss@acme.com", "POST", "/api/admin/memory/items/"+ids["Fiscal year"]+"/reject", map[string]any{"reason": "outdated"}); code != 200 {
		t.Fatalf("reject: %d %s", code, b)
	}
	doPull("bob@acme.com", bobDir)
	doPull("ann@acme.com", annDir)
	if got := rules(bobDir); !slices.Equal(got, []string{"mine.md"}) {
		t.Fatalf("bob's rules after reject: %v", got)
	}
	if got := rules(annDir); len(got) != 0 {
		t.Fatalf("ann's rules after reject: %v", got)
	}
	// The page lists the published items with their vote forms; admins see governance buttons.
	code, b = call("bob@acme.com", "GET", "/memory?sort=recent", nil)
	if code != 200 || !bytes.Contains(b, []byte("Churn")) || bytes.Contains(b, []byte("Fiscal year")) || !bytes.Contains(b, []byte(`action="/memory/vote"`)) ||
		bytes.Contains(b, []byte("Make mandatory")) {
		t.Fatalf("memory page: %d\n%s", code, b)
	}
	if code, b := call("boss@acme.com", "GET", "/memory?status=all", nil); code != 200 || !bytes.Contains(b, []byte("Fiscal year")) || !bytes.Contains(b, []byte("Approve")) {
		t.Fatalf("admin memory page: %d\n%s", code, b)
	}
	if code, _ := call("bob@acme.com", "GET", "/memory?page=x", nil); code != 400 {
		t.Fatalf("page=x: %d", code)
	}
	var st memory.Stats
	if code, b := call("boss@acme.com", "GET", "/api/memory/stats", nil); json.Unmarshal(b, &st) != nil || code != 200 || st.KnowledgeCount != 1 || st.Pending == nil {
		t.Fatalf("stats: %d %s", code, b)
	}
}
