package pull_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/pull"
	"github.com/ai-data-analyst/analyst/store"
	"github.com/ai-data-analyst/analyst/workspace"
)

// server is the real portal on a real bbolt store, serving an instance whose Parquet was
// written by DuckDB, behind a hook that lets a test break replies.
type server struct {
	cfg    *config.Config
	url    string
	duck   *sql.DB
	tokens map[string]string // role name -> token

	mu       sync.Mutex
	hook     func(w http.ResponseWriter, r *http.Request) bool // true: the hook replied
	requests []string                                          // "Range path" of every /api/files request
}

func newServer(t *testing.T) *server {
	t.Helper()
	home := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(home, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config/instance.yaml", "instance: {name: Pull Shop}\ndata_source: {type: csv, csv: {path: src}}\n"+
		"access: {private_folders: [hr]}\ndatasets: {mkt: {label: Marketing}}\n")
	write("docs/data_description.md", "# Shop\n\nThe shop's tables.\n\n```yaml\ntables:\n"+
		"  - id: orders\n    name: orders\n    description: One row per order\n    folder: sales\n    primary_key: id\n"+
		"    sync_strategy: partitioned\n    partition_by: day\n"+
		"  - id: payroll_x\n    name: payroll_x\n    description: Confidential pay of each employee\n    folder: hr\n"+
		"    # owner: people team\n    primary_key: id\n    sync_strategy: full_refresh\n"+
		"  - {id: products, name: products, folder: shop, primary_key: sku, sync_strategy: full_refresh, description: \"Product list\"}\n"+
		"```\n")
	write("docs/datasets/mkt.md", "```yaml\ntables:\n  - {id: campaigns, name: campaigns, folder: marketing, primary_key: id, sync_strategy: full_refresh, dataset: mkt}\n```\n")
	write("docs/metrics/sales/revenue.yml", "name: revenue\ntable: orders\nsql: SELECT sum(total) FROM orders\n")
	write("docs/metrics/hr/pay.yml", "- name: pay_total\n  tables: [payroll_x]\n  sql: SELECT sum(pay) FROM payroll_x\n")
	write("data/metadata/profiles.json", `{"tables":{"orders":{"row_count":6},"products":{"row_count":3}}}`)
	write("data/metadata/private/profiles.json", `{"tables":{"payroll_x":{"row_count":2,"sample_values":["9000"]}}}`)
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { duck.Close() })
	s := &server{cfg: cfg, duck: duck, tokens: map[string]string{}}
	s.writeParquet(t, "sales/orders/2024_01_01.parquet", "SELECT i AS id, 10.5 * i AS total FROM range(1, 4) t(i)")
	s.writeParquet(t, "sales/orders/2024_01_02.parquet", "SELECT i AS id, 10.5 * i AS total, 'web' AS channel FROM range(4, 7) t(i)")
	s.writeParquet(t, "shop/products.parquet", "SELECT 'p' || i AS sku, i AS price FROM range(3) t(i)")
	s.writeParquet(t, "hr/payroll_x.parquet", "SELECT i AS id, 9000 AS pay FROM range(2) t(i)")
	s.writeParquet(t, "marketing/campaigns.parquet", "SELECT i AS id FROM range(4) t(i)")
	s.publish(t)

	db := testenv.OpenStore(t, cfg.Paths.Store)
	users, _ := store.NewUsers(db)
	runs, _ := store.NewRuns(db)
	for role, email := range map[string]string{store.RoleAnalyst: "ann@example.com", store.RolePrivileged: "pat@example.com", "marketer": "mia@example.com"} {
		r := role
		if role == "marketer" {
			r = store.RoleAnalyst
		}
		if _, err := users.Add(email, r); err != nil {
			t.Fatal(err)
		}
		tok, _, err := users.CreateToken(email, "test")
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[role] = tok
	}
	users.Update("mia@example.com", func(u *store.User) error { u.Datasets = map[string]bool{"mkt": true}; return nil })
	h := portal.New(portal.Deps{Config: cfg, Runs: runs, Users: users, Policy: &access.Policy{Config: cfg, Users: users}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hook := s.hook
		if strings.HasPrefix(r.URL.Path, "/api/files/") {
			s.requests = append(s.requests, r.Header.Get("Range")+" "+strings.TrimPrefix(r.URL.Path, "/api/files/"))
		}
		s.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *server) writeParquet(t *testing.T, rel, query string) {
	t.Helper()
	p := filepath.Join(s.cfg.Paths.Parquet, filepath.FromSlash(rel))
	os.MkdirAll(filepath.Dir(p), 0o755)
	tmp := filepath.Join(filepath.Dir(p), ".tmp-"+filepath.Base(p))
	if _, err := s.duck.Exec("COPY (" + query + ") TO '" + tmp + "' (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// publish does what the publish stage does: schema files, then the manifest.
func (s *server) publish(t *testing.T) {
	t.Helper()
	meta := s.cfg.Paths.Metadata
	if _, err := store.WriteSchemaFiles(s.cfg.Catalogue.Tables, store.SchemaFiles{ParquetRoot: s.cfg.Paths.Parquet,
		Public: filepath.Join(meta, "schema.yml"), Private: filepath.Join(meta, "private", "schema.yml"),
		DatasetDir: filepath.Join(meta, "datasets"), IsPrivate: s.cfg.IsPrivate, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	files, err := store.ScanPublished(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.UpdateManifest(store.ManifestPath(s.cfg), files, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func (s *server) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook, s.requests = h, nil
	s.mu.Unlock()
}

func (s *server) fileRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *server) get(t *testing.T, role, path string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.tokens[role])
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (s *server) pull(t *testing.T, role, dir string, mod ...func(*pull.Options)) *pull.Result {
	t.Helper()
	opts := pull.Options{Server: s.url, Token: s.tokens[role], Dir: dir, Backoff: time.Millisecond}
	for _, m := range mod {
		m(&opts)
	}
	res, err := pull.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("pull as %s: %v", role, err)
	}
	return res
}

// query runs a query on the workspace's analytics database and returns the first column.
func query(t *testing.T, dir, q string) []string {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(dir, "user", "duckdb", "analytics.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " ")))
	}
	return out
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func exec(t *testing.T, dir, q string) {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(dir, "user", "duckdb", "analytics.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// snapshot maps every file under root to its content's hash and modification time.
func snapshot(t *testing.T, root string, skip func(rel string) bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if skip != nil && skip(filepath.ToSlash(rel)) {
			return nil
		}
		b, _ := os.ReadFile(p)
		fi, _ := d.Info()
		sum := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:]) + " " + fi.ModTime().String()
		return nil
	})
	return out
}

func TestPullEndToEnd(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	// The analyst's own files, which no pull may touch.
	for rel, content := range map[string]string{"user/scripts/mine.py": "print(1)\n", "user/sessions/2024-01-01_a.jsonl": "{}\n", "user/artifacts/chart.png": "PNG"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755)
		os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o644)
	}
	notDuckDB := func(rel string) bool { return strings.HasPrefix(rel, "duckdb/") }
	userBefore := snapshot(t, filepath.Join(dir, "user"), notDuckDB)

	// Dry run: reports, writes nothing.
	dry := s.pull(t, store.RoleAnalyst, dir, func(o *pull.Options) { o.DryRun = true })
	if !dry.DryRun || dry.Pulled == 0 {
		t.Fatalf("dry run: %+v", dry)
	}
	if _, err := os.Stat(filepath.Join(dir, "server")); err == nil {
		t.Fatal("dry run created server/")
	}
	if _, err := os.Stat(filepath.Join(dir, ".analyst", "config")); err == nil {
		t.Fatal("dry run saved the config")
	}

	first := s.pull(t, store.RoleAnalyst, dir)
	if first.Pulled != dry.Pulled || first.Bytes != dry.Bytes || first.Unchanged != 0 {
		t.Errorf("first pull %+v, dry run said %d files %d bytes", first, dry.Pulled, dry.Bytes)
	}
	if got := strings.Join(first.Views, ","); got != "orders,products" {
		t.Errorf("views %s", got)
	}
	// DuckDB reads every view, from any folder: the paths are absolute.
	if got := query(t, dir, `SELECT count(*) || '/' || count(channel) || '/' || sum(total) FROM "orders"`); got[0] != "6/3/220.5" {
		t.Errorf("orders view: %v", got)
	}
	if got := query(t, dir, `SELECT count(*) FROM "products"`); got[0] != "3" {
		t.Errorf("products view: %v", got)
	}
	if got := query(t, dir, `SELECT sql FROM duckdb_views() WHERE view_name = 'orders'`); !strings.Contains(got[0], filepath.ToSlash(dir)+"/server/parquet/sales/orders/*.parquet") || !strings.Contains(got[0], "union_by_name") {
		t.Errorf("orders view sql: %v", got)
	}
	// Every pulled file is the server's, byte for byte.
	for _, rel := range first.PulledFiles {
		if strings.HasPrefix(rel, "parquet/") {
			want, _ := os.ReadFile(filepath.Join(s.cfg.Paths.Parquet, strings.TrimPrefix(rel, "parquet/")))
			got, _ := os.ReadFile(filepath.Join(dir, "server", rel))
			if !bytes.Equal(want, got) {
				t.Errorf("%s differs from the server's", rel)
			}
		}
	}
	claude, _ := os.ReadFile(filepath.Join(dir, "CLAUDE.md"))
	if !strings.Contains(string(claude), "# Pull Shop") || !strings.Contains(string(claude), "| `orders` | sales | 6 |") ||
		!strings.Contains(string(claude), filepath.Join(dir, "user", "duckdb", "analytics.duckdb")) {
		t.Errorf("CLAUDE.md:\n%s", claude)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".claude", "settings.json")); err != nil || !json.Valid(b) {
		t.Errorf("settings.json: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, ".analyst", "config")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config: %v %v", fi, err)
	}

	// Second pull: nothing moves; the remembered server and token are used.
	s.setHook(nil)
	second, err := pull.Run(context.Background(), pull.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if second.Pulled != 0 || second.Bytes != 0 || second.Removed != 0 || second.Unchanged != first.Pulled {
		t.Errorf("second pull: %+v", second)
	}
	if reqs := s.fileRequests(); len(reqs) != 0 {
		t.Errorf("second pull requested files: %v", reqs)
	}

	// The analyst's own table and view in the database survive pulls; a republished table
	// transfers only its own Parquet.
	exec(t, dir, `CREATE TABLE my_notes AS SELECT 42 AS answer; CREATE VIEW my_view AS SELECT 1 AS one`)
	s.writeParquet(t, "shop/products.parquet", "SELECT 'p' || i AS sku, i AS price FROM range(5) t(i)")
	s.publish(t)
	s.setHook(nil)
	third := s.pull(t, store.RoleAnalyst, dir)
	var parquet []string
	for _, f := range third.PulledFiles {
		if !strings.HasPrefix(f, "metadata/") { // schema.yml carries its generation time
			parquet = append(parquet, f)
		}
	}
	if strings.Join(parquet, ",") != "parquet/shop/products.parquet" || third.Removed != 0 {
		t.Errorf("after republishing products: pulled %v, removed %d", third.PulledFiles, third.Removed)
	}
	if got := query(t, dir, `SELECT count(*) FROM products`); got[0] != "5" {
		t.Errorf("products after change: %v", got)
	}

	// A table that leaves the view loses its files and view; the analyst's objects stay.
	os.Remove(filepath.Join(s.cfg.Paths.Parquet, "shop", "products.parquet"))
	s.publish(t)
	fourth := s.pull(t, store.RoleAnalyst, dir)
	if fourth.Removed != 1 || fourth.RemovedFiles[0] != "parquet/shop/products.parquet" || strings.Join(fourth.DroppedViews, ",") != "products" {
		t.Errorf("after removing products: %+v", fourth)
	}
	if _, err := os.Stat(filepath.Join(dir, "server", "parquet", "shop")); err == nil {
		t.Error("empty folder left behind")
	}
	got := query(t, dir, `SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1`)
	if strings.Join(got, ",") != "my_notes,my_view,orders" {
		t.Errorf("database objects: %v", got)
	}

	// A corrupt database is set aside, never deleted, and rebuilt.
	dbPath := filepath.Join(dir, "user", "duckdb", "analytics.duckdb")
	os.Remove(dbPath + ".wal")
	os.WriteFile(dbPath, []byte("this is not a database, but it is mine"), 0o644)
	fifth := s.pull(t, store.RoleAnalyst, dir)
	if strings.Join(fifth.Views, ",") != "orders" {
		t.Errorf("views after corruption: %v", fifth.Views)
	}
	aside, _ := filepath.Glob(dbPath + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("set aside: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != "this is not a database, but it is mine" {
		t.Error("the corrupt database was not kept as it was")
	}
	if got := query(t, dir, `SELECT count(*) FROM orders`); got[0] != "6" {
		t.Errorf("orders after rebuild: %v", got)
	}

	// Through all of it, user/ was not touched.
	userAfter := snapshot(t, filepath.Join(dir, "user"), notDuckDB)
	if len(userAfter) != len(userBefore) {
		t.Errorf("user/ files: before %v after %v", userBefore, userAfter)
	}
	for k, v := range userBefore {
		if userAfter[k] != v {
			t.Errorf("user/%s changed", k)
		}
	}
}

func TestPrivateTableNeverReachesStandardAnalyst(t *testing.T) {
	s := newServer(t)
	secret := []string{"payroll_x", "Confidential", "9000", "pay_total", "people team"}
	leaks := func(b []byte) string {
		for _, w := range secret {
			if bytes.Contains(b, []byte(w)) {
				return w
			}
		}
		return ""
	}

	code, _, body := s.get(t, store.RoleAnalyst, "/api/manifest")
	if code != 200 || leaks(body) != "" {
		t.Fatalf("manifest %d leaks %q: %s", code, leaks(body), body)
	}
	var view workspace.View
	json.Unmarshal(body, &view)
	for _, f := range view.Files {
		if f.Table == "campaigns" || strings.Contains(f.Path, "private") || strings.Contains(f.Path, "mkt") {
			t.Errorf("standard analyst's view has %s", f.Path)
		}
	}

	// Files outside the view, probed directly: all the same 404.
	_, _, missing := s.get(t, store.RoleAnalyst, "/api/files/parquet/hr/nothing.parquet")
	for _, p := range []string{"parquet/hr/payroll_x.parquet", "metadata/private/schema.yml", "metadata/private/profiles.json",
		"docs/metrics/hr/pay.yml", "parquet/marketing/campaigns.parquet", "metadata/sync_state.json", "metadata/manifest.json",
		"parquet/sales/orders/..%2F..%2Fhr%2Fpayroll_x.parquet", "docs/%2e%2e/config/instance.yaml", "parquet/sales/orders/.tmp"} {
		code, _, b := s.get(t, store.RoleAnalyst, "/api/files/"+p)
		if code != http.StatusNotFound || !bytes.Equal(b, missing) {
			t.Errorf("%s: %d %s", p, code, b)
		}
	}

	// Everything the analyst pulls is free of the private table.
	dir := t.TempDir()
	s.pull(t, store.RoleAnalyst, dir)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".duckdb") {
			return err
		}
		b, _ := os.ReadFile(p)
		if w := leaks(b); w != "" {
			t.Errorf("%s contains %q", p, w)
		}
		return nil
	})
	doc, _ := os.ReadFile(filepath.Join(dir, "server", "docs", "data_description.md"))
	if !strings.Contains(string(doc), "name: orders") || !strings.Contains(string(doc), "name: products") || !strings.Contains(string(doc), "The shop's tables.") {
		t.Errorf("filtered data_description.md lost public content:\n%s", doc)
	}
	if _, err := os.Stat(filepath.Join(dir, "server", "metadata", "schema.yml")); err != nil {
		t.Errorf("public schema.yml: %v", err)
	}

	// The privileged analyst gets it all, the marketer their dataset.
	pdir := t.TempDir()
	res := s.pull(t, store.RolePrivileged, pdir)
	if strings.Join(res.Views, ",") != "orders,payroll_x,products" {
		t.Errorf("privileged views %v", res.Views)
	}
	if got := query(t, pdir, `SELECT sum(pay) FROM payroll_x`); got[0] != "18000" {
		t.Errorf("payroll_x: %v", got)
	}
	for _, rel := range []string{"metadata/private/schema.yml", "metadata/private/profiles.json", "docs/metrics/hr/pay.yml"} {
		if _, err := os.Stat(filepath.Join(pdir, "server", rel)); err != nil {
			t.Errorf("privileged analyst lacks %s", rel)
		}
	}
	orig, _ := os.ReadFile(filepath.Join(s.cfg.Paths.DocsDir, "data_description.md"))
	if got, _ := os.ReadFile(filepath.Join(pdir, "server", "docs", "data_description.md")); !bytes.Equal(got, orig) {
		t.Error("privileged analyst's data_description.md is not the original")
	}
	mres := s.pull(t, "marketer", t.TempDir())
	if strings.Join(mres.Views, ",") != "orders,products,campaigns" {
		t.Errorf("marketer views %v", mres.Views)
	}
}

func TestFileProtocol(t *testing.T) {
	s := newServer(t)
	p := "/api/files/parquet/sales/orders/2024_01_02.parquet"
	want, _ := os.ReadFile(filepath.Join(s.cfg.Paths.Parquet, "sales", "orders", "2024_01_02.parquet"))
	sum := sha256.Sum256(want)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`

	code, h, b := s.get(t, store.RoleAnalyst, p)
	if code != 200 || h.Get("ETag") != etag || !bytes.Equal(b, want) {
		t.Fatalf("GET: %d etag %s", code, h.Get("ETag"))
	}
	if code, _, b := s.get(t, store.RoleAnalyst, p, "If-None-Match", etag); code != http.StatusNotModified || len(b) != 0 {
		t.Errorf("If-None-Match: %d", code)
	}
	if code, _, b := s.get(t, store.RoleAnalyst, p, "Range", "bytes=100-"); code != http.StatusPartialContent || !bytes.Equal(b, want[100:]) {
		t.Errorf("Range: %d, %d bytes", code, len(b))
	}
	if code, _, b := s.get(t, store.RoleAnalyst, p, "Range", "bytes=100-", "If-Range", `"stale"`); code != 200 || !bytes.Equal(b, want) {
		t.Errorf("If-Range with a stale ETag: %d", code)
	}
	if code, _, _ := s.get(t, "nobody", p); code != http.StatusUnauthorized {
		t.Errorf("bad token: %d", code)
	}
}

func TestPullResumesAndVerifies(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	var view workspace.View
	_, _, body := s.get(t, store.RoleAnalyst, "/api/manifest")
	json.Unmarshal(body, &view)
	var target workspace.File
	for _, f := range view.Files {
		if f.Path == "parquet/sales/orders/2024_01_01.parquet" {
			target = f
		}
	}
	content, _ := os.ReadFile(filepath.Join(s.cfg.Paths.Parquet, "sales", "orders", "2024_01_01.parquet"))

	// An interrupted download left the first half: the pull asks for the rest only.
	half := int64(len(content) / 2)
	os.MkdirAll(filepath.Join(dir, ".analyst", "partial"), 0o755)
	os.WriteFile(filepath.Join(dir, ".analyst", "partial", target.SHA256), content[:half], 0o644)

	// The first full download of products arrives corrupted; the manifest is first refused with 503.
	var mu sync.Mutex
	corrupted, refused := false, false
	s.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/api/manifest" && !refused {
			refused = true
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		if r.URL.Path == "/api/files/parquet/shop/products.parquet" && !corrupted {
			corrupted = true
			// The real file's ETag, with one byte flipped in transit: only the sha256 can tell.
			b, _ := os.ReadFile(filepath.Join(s.cfg.Paths.Parquet, "shop", "products.parquet"))
			w.Header().Set("ETag", `"`+sha(b)+`"`)
			b[len(b)/3] ^= 0x55
			w.Write(b)
			return true
		}
		return false
	})
	res := s.pull(t, store.RoleAnalyst, dir)
	reqs := s.fileRequests()
	var ranged, productsTries int
	for _, r := range reqs {
		if r == "bytes="+itoa(half)+"- parquet/sales/orders/2024_01_01.parquet" {
			ranged++
		}
		if strings.HasSuffix(r, " parquet/shop/products.parquet") {
			productsTries++
		}
	}
	if ranged != 1 {
		t.Errorf("no ranged request for the partial file: %v", reqs)
	}
	if productsTries != 2 {
		t.Errorf("products fetched %d times, want 2 (corrupted, then good): %v", productsTries, reqs)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "server", "parquet", "sales", "orders", "2024_01_01.parquet"))
	if !bytes.Equal(got, content) {
		t.Error("resumed file differs from the server's")
	}
	if got := query(t, dir, `SELECT count(*) FROM products`); got[0] != "3" {
		t.Errorf("products after retry: %v", got)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, ".analyst", "partial")); len(left) != 0 {
		t.Errorf("partial files left: %v", left)
	}
	if res.Pulled != len(view.Files) {
		t.Errorf("pulled %d of %d", res.Pulled, len(view.Files))
	}

	// A file that stays corrupt fails the pull after its attempts; what was there stays usable.
	s.writeParquet(t, "shop/products.parquet", "SELECT 'q' || i AS sku, i AS price FROM range(4) t(i)")
	s.publish(t)
	s.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "products.parquet") {
			w.Write([]byte("garbage"))
			return true
		}
		return false
	})
	_, err := pull.Run(context.Background(), pull.Options{Dir: dir, Backoff: time.Millisecond, Attempts: 3})
	if err == nil || !strings.Contains(err.Error(), "verification failed") {
		t.Fatalf("pull with a corrupt file: %v", err)
	}
	if got := query(t, dir, `SELECT count(*) FROM products`); got[0] != "3" {
		t.Errorf("previous products not kept: %v", got)
	}
}

// TestPullVerifiesWhatItsStateDoesNotVouchFor is a crash before the flush: the mirror holds
// renamed files whose data may not have reached the disk, and the state that would let the next
// pull trust them by size and mtime was never saved. The next pull hashes them and downloads
// again exactly the ones that are wrong, even when their size is right.
func TestPullVerifiesWhatItsStateDoesNotVouchFor(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	first := s.pull(t, store.RoleAnalyst, dir)
	if err := os.Remove(filepath.Join(dir, ".analyst", "state.json")); err != nil {
		t.Fatal(err)
	}
	torn := filepath.Join(dir, "server", "parquet", "shop", "products.parquet")
	b, err := os.ReadFile(torn)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(torn, 0o644)
	if err := os.WriteFile(torn, make([]byte, len(b)), 0o644); err != nil { // zeros, as a lost writeback leaves
		t.Fatal(err)
	}
	again := s.pull(t, store.RoleAnalyst, dir)
	if again.Pulled != 1 || again.PulledFiles[0] != "parquet/shop/products.parquet" || again.Unchanged != first.Pulled-1 {
		t.Fatalf("after the crash: pulled %v, %d unchanged of %d", again.PulledFiles, again.Unchanged, first.Pulled)
	}
	if got, _ := os.ReadFile(torn); !bytes.Equal(got, b) {
		t.Error("the torn file was not replaced by the server's")
	}
	if got := query(t, dir, `SELECT count(*) FROM products`); got[0] != "3" {
		t.Errorf("products after repair: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, ".analyst", "state.json")); err != nil {
		t.Errorf("the state was not saved again: %v", err)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestPush(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	s.pull(t, store.RoleAnalyst, dir)
	sessions := filepath.Join(dir, "user", "sessions")
	os.MkdirAll(sessions, 0o755)
	line := strings.Repeat("x", 100) + "\n"
	os.WriteFile(filepath.Join(sessions, "2024-05-01_abc.jsonl"), []byte(strings.Repeat(line, 10)), 0o644)
	os.WriteFile(filepath.Join(sessions, "notes.txt"), []byte("not a session"), 0o644)
	os.WriteFile(filepath.Join(dir, "CLAUDE.local.md"), []byte("# my notes\n"), 0o644)

	res, err := pull.Push(context.Background(), pull.Options{Dir: dir, Backoff: time.Millisecond})
	if err != nil || res.Sessions != 1 || res.Bytes != 1010 || !res.ClaudeLocal {
		t.Fatalf("first push: %+v %v", res, err)
	}
	// The transcript grows: only the new part goes.
	f, _ := os.OpenFile(filepath.Join(sessions, "2024-05-01_abc.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(line)
	f.Close()
	res, err = pull.Push(context.Background(), pull.Options{Dir: dir, Backoff: time.Millisecond})
	if err != nil || res.Sessions != 1 || res.Bytes != 101 || res.ClaudeLocal {
		t.Fatalf("second push: %+v %v", res, err)
	}
	userDir := filepath.Join(s.cfg.Paths.DataDir, "users", "ann@example.com")
	held, _ := os.ReadFile(filepath.Join(userDir, "sessions", "2024-05-01_abc.jsonl"))
	if string(held) != strings.Repeat(line, 11) {
		t.Errorf("server holds %d bytes", len(held))
	}
	if b, _ := os.ReadFile(filepath.Join(userDir, "CLAUDE.local.md")); string(b) != "# my notes\n" {
		t.Errorf("CLAUDE.local.md on the server: %q", b)
	}
	// A transcript is append-only: a wrong offset is refused with the size held.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/push/sessions/2024-05-01_abc.jsonl?offset=0", strings.NewReader("overwrite"))
	req.Header.Set("Authorization", "Bearer "+s.tokens[store.RoleAnalyst])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("overwrite attempt: %d", resp.StatusCode)
	}
	// Names cannot escape the user's folder.
	req, _ = http.NewRequest(http.MethodPost, s.url+"/api/push/sessions/..%2F..%2Fx.jsonl?offset=0", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer "+s.tokens[store.RoleAnalyst])
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("a traversal name was accepted")
	}
	names := []string{}
	entries, _ := os.ReadDir(filepath.Join(s.cfg.Paths.DataDir, "users"))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "ann@example.com" {
		t.Errorf("data/users holds %v", names)
	}
}
