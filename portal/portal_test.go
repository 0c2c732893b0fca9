package portal_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/catalog"
	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/store"
)

type fixture struct {
	srv                                  *httptest.Server
	users                                *store.Users
	runs                                 *store.Runs
	admin, analyst, privileged, outsider string
	synced                               [][]string
	cfg                                  *config.Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	home := t.TempDir()
	write := func(rel, content string) {
		os.MkdirAll(filepath.Dir(filepath.Join(home, rel)), 0o755)
		os.WriteFile(filepath.Join(home, rel), []byte(content), 0o644)
	}
	write("config/instance.yaml", "instance: {name: Portal test}\ndata_source: {type: csv, csv: {path: src}}\naccess: {private_folders: [hr]}\n")
	write("docs/data_description.md", "```yaml\ntables:\n"+
		"  - {id: a.orders, name: orders, folder: sales, description: O, primary_key: id, sync_strategy: full_refresh}\n"+
		"  - {id: a.salaries, name: salaries, folder: hr, description: S, primary_key: id, sync_strategy: full_refresh}\n```\n")
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenDB(filepath.Join(home, "data/analyst.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.CloseDB(db) })
	users, _ := store.NewUsers(db)
	runs, _ := store.NewRuns(db)
	f := &fixture{users: users, runs: runs, cfg: cfg}
	token := func(email, role string) string {
		if _, err := users.Add(email, role); err != nil {
			t.Fatal(err)
		}
		plain, _, err := users.CreateToken(email, "test")
		if err != nil {
			t.Fatal(err)
		}
		return plain
	}
	f.admin = token("boss@example.com", store.RoleAdmin)
	f.analyst = token("ann@example.com", store.RoleAnalyst)
	f.privileged = token("pat@example.com", store.RolePrivileged)
	f.outsider = token("out@example.com", store.RoleAnalyst)
	users.Update("out@example.com", func(u *store.User) error { u.Disabled = true; return nil })
	h := portal.New(portal.Deps{
		Config: cfg, Runs: runs, Users: users, Policy: &access.Policy{Config: cfg, Users: users},
		RequestSync: func(tables []string, trigger, by string) (string, error) {
			f.synced = append(f.synced, tables)
			run, err := runs.Create("run-1", trigger, tables)
			return run.RunID, err
		},
	})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e struct{ Error string }
		if json.Unmarshal(out, &e) != nil || e.Error == "" {
			t.Fatalf("%s %s: error %d without a JSON error body: %s", method, path, resp.StatusCode, out)
		}
	}
	return resp.StatusCode, out
}

// TestRouteAuth checks every API route for anonymous, analyst, privileged and admin callers.
func TestRouteAuth(t *testing.T) {
	f := newFixture(t)
	routes := []struct {
		method, path string
		body         any
		signedIn     bool // any user; otherwise admin only
	}{
		{"GET", "/api/tables", nil, true},
		{"GET", "/api/catalog", nil, true},
		{"GET", "/api/metrics", nil, true},
		{"GET", "/api/runs", nil, false},
		{"GET", "/api/runs/run-x", nil, false},
		{"POST", "/api/runs/run-x/replay", nil, false},
		{"POST", "/api/sync", map[string]any{"tables": []string{"orders"}}, false},
		{"GET", "/api/admin/users", nil, false},
		{"POST", "/api/admin/users", map[string]string{"email": "new@example.com"}, false},
		{"POST", "/api/admin/users/ann@example.com/tokens", nil, false},
		{"DELETE", "/api/admin/users/nobody@example.com", nil, false},
		{"GET", "/api/jira/consistency", nil, false},
		{"POST", "/api/jira/check", map[string]any{"days": 30, "no_fix": true}, false},
		{"POST", "/api/jira/backfill", map[string]any{"keys": []string{"SUP-1"}}, false},
	}
	for _, rt := range routes {
		if code, _ := f.do(t, rt.method, rt.path, "", rt.body); code != http.StatusUnauthorized {
			t.Errorf("anonymous %s %s: %d, want 401", rt.method, rt.path, code)
		}
		if code, _ := f.do(t, rt.method, rt.path, "not-a-token-at-all", rt.body); code != http.StatusUnauthorized {
			t.Errorf("bad token %s %s: %d, want 401", rt.method, rt.path, code)
		}
		if code, _ := f.do(t, rt.method, rt.path, f.outsider, rt.body); code != http.StatusUnauthorized {
			t.Errorf("disabled user %s %s: %d, want 401", rt.method, rt.path, code)
		}
		for _, tok := range []string{f.analyst, f.privileged} {
			code, _ := f.do(t, rt.method, rt.path, tok, rt.body)
			if rt.signedIn && code >= 400 {
				t.Errorf("user %s %s: %d", rt.method, rt.path, code)
			}
			if !rt.signedIn && code != http.StatusForbidden {
				t.Errorf("non-admin %s %s: %d, want 403", rt.method, rt.path, code)
			}
		}
		if code, body := f.do(t, rt.method, rt.path, f.admin, rt.body); code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Errorf("admin %s %s: %d %s", rt.method, rt.path, code, body)
		}
	}
	if code, body := f.do(t, "GET", "/healthz", "", nil); code != 200 || string(bytes.TrimSpace(body)) != `{"status":"ok"}` {
		t.Errorf("healthz: %d %s", code, body)
	}
}

func TestTablesRespectAccess(t *testing.T) {
	f := newFixture(t)
	names := func(token string) map[string]bool {
		code, body := f.do(t, "GET", "/api/tables", token, nil)
		if code != 200 {
			t.Fatalf("tables: %d", code)
		}
		var list []struct {
			Name    string `json:"name"`
			Private bool   `json:"private"`
			Status  string `json:"status"`
		}
		json.Unmarshal(body, &list)
		out := map[string]bool{}
		for _, e := range list {
			out[e.Name] = e.Private
			if e.Status != "never" {
				t.Errorf("%s: status %q before any sync", e.Name, e.Status)
			}
		}
		return out
	}
	if got := names(f.analyst); len(got) != 1 || got["orders"] {
		t.Fatalf("analyst sees %v", got)
	}
	if got := names(f.privileged); len(got) != 2 || !got["salaries"] {
		t.Fatalf("privileged sees %v", got)
	}
	if err := f.users.Grant("salaries", "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := names(f.analyst); !got["salaries"] {
		t.Fatalf("a grant must show the table: %v", got)
	}
}

func TestAdminUserAutomation(t *testing.T) {
	f := newFixture(t)
	code, body := f.do(t, "POST", "/api/admin/users", f.admin, map[string]string{"email": "New@Example.com", "role": "privileged"})
	if code != http.StatusCreated || !bytes.Contains(body, []byte(`"email":"new@example.com"`)) {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _ := f.do(t, "POST", "/api/admin/users", f.admin, map[string]string{"email": "x@example.com", "role": "god"}); code != 400 {
		t.Fatalf("bad role: %d", code)
	}
	code, body = f.do(t, "POST", "/api/admin/users/new@example.com/tokens", f.admin, nil)
	var tok struct{ Token string }
	json.Unmarshal(body, &tok)
	if code != http.StatusCreated || tok.Token == "" {
		t.Fatalf("token: %d %s", code, body)
	}
	if code, _ := f.do(t, "GET", "/api/tables", tok.Token, nil); code != 200 {
		t.Fatalf("the new token must work: %d", code)
	}
	if code, _ := f.do(t, "DELETE", "/api/admin/users/new@example.com", f.admin, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := f.do(t, "GET", "/api/tables", tok.Token, nil); code != http.StatusUnauthorized {
		t.Fatalf("a removed user's token must stop working: %d", code)
	}
	code, body = f.do(t, "POST", "/api/sync", f.admin, map[string]any{"tables": []string{"nope"}})
	if code != 400 {
		t.Fatalf("unknown table: %d %s", code, body)
	}
	code, body = f.do(t, "POST", "/api/sync", f.admin, map[string]any{"tables": []string{"a.orders"}})
	if code != http.StatusAccepted || !bytes.Contains(body, []byte(`"run_id":"run-1"`)) || len(f.synced) != 1 || f.synced[0][0] != "orders" {
		t.Fatalf("sync: %d %s %v", code, body, f.synced)
	}
	code, body = f.do(t, "GET", "/api/runs/run-1", f.admin, nil)
	if code != 200 || !bytes.Contains(body, []byte(`"status":"queued"`)) {
		t.Fatalf("run: %d %s", code, body)
	}
}

func TestCatalogAPIRespectsAccess(t *testing.T) {
	f := newFixture(t)
	files := catalog.FilesFor(f.cfg.Paths)
	for _, name := range []string{"orders", "salaries"} {
		tbl, _ := f.cfg.Catalogue.Table(name)
		p := &catalog.TableProfile{TableID: tbl.ID, Name: tbl.Name, RowCount: 42}
		if err := files.Put(f.cfg, tbl, p, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if code, body := f.do(t, "GET", "/api/catalog/profile/orders", f.analyst, nil); code != 200 || !bytes.Contains(body, []byte(`"row_count":42`)) {
		t.Fatalf("public profile: %d %s", code, body)
	}
	if code, _ := f.do(t, "GET", "/api/catalog/profile/salaries", f.analyst, nil); code != http.StatusNotFound {
		t.Fatalf("a private profile must be a 404 for an analyst, got %d", code)
	}
	if code, _ := f.do(t, "GET", "/api/catalog/profile/nonexistent", f.analyst, nil); code != http.StatusNotFound {
		t.Fatalf("unknown table: %d", code)
	}
	if code, _ := f.do(t, "GET", "/api/catalog/profile/salaries", f.privileged, nil); code != 200 {
		t.Fatalf("privileged: %d", code)
	}
	_, body := f.do(t, "GET", "/api/catalog", f.analyst, nil)
	if bytes.Contains(body, []byte("salaries")) {
		t.Fatalf("the catalog shows a private table to an analyst: %s", body)
	}
	if code, _ := f.do(t, "GET", "/api/metrics/sales/..passwd", f.analyst, nil); code != http.StatusBadRequest {
		t.Fatalf("an invalid metric name: %d, want 400", code)
	}
}
