package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors/bigquery/bqtest"
	"github.com/ai-data-analyst/analyst/connectors/keboola/keboolatest"
	"github.com/ai-data-analyst/analyst/internal/testenv"
)

// keboolaProject is a fake project: a small table without a primary key and a "large" one
// (at least --large-rows 5 rows) with a DATE column, in two buckets.
func keboolaProject(t *testing.T) *keboolatest.Server {
	kbc := keboolatest.New(t, keboolatest.Config{})
	kbc.SetEnv(t)
	now := time.Now()
	var orders []keboolatest.Row
	for i := range 6 {
		orders = append(orders, keboolatest.Row{Values: []string{fmt.Sprint(i + 1), fmt.Sprintf("2024-0%d-15", i%3+1), "12.50"}, Changed: now})
	}
	kbc.AddTable(keboolatest.Table{
		ID: "in.c-shop.orders", Columns: []string{"order_id", "ordered_on", "total"}, PrimaryKey: []string{"order_id"},
		ColumnMetadata: map[string][]keboolatest.Meta{
			"order_id":   {{Key: "KBC.datatype.basetype", Value: "INTEGER", Provider: "user"}},
			"ordered_on": {{Key: "KBC.datatype.basetype", Value: "DATE", Provider: "user"}},
			"total":      {{Key: "KBC.datatype.basetype", Value: "NUMERIC", Provider: "user"}, {Key: "KBC.datatype.length", Value: "10,2", Provider: "user"}},
		},
		Metadata: []keboolatest.Meta{{Key: "KBC.description", Value: "One row per order", Provider: "user"}},
		Rows:     orders,
	})
	kbc.AddTable(keboolatest.Table{
		ID: "in.c-crm.company", Columns: []string{"id", "name"},
		Rows: []keboolatest.Row{{Values: []string{"1", "Acme"}, Changed: now}, {Values: []string{"2", "Globex"}, Changed: now}},
	})
	return kbc
}

func tableByName(t *testing.T, cfg *config.Config, name string) config.Table {
	t.Helper()
	tb, ok := cfg.Catalogue.Table(name)
	if !ok {
		t.Fatalf("no table %s in the generated catalogue: %+v", name, cfg.Catalogue.Tables)
	}
	return tb
}

// checkTokenOnlyInEnv: the token is in .env (0600) only, referenced from instance.yaml.
func checkTokenOnlyInEnv(t *testing.T, home, token string) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(home, ".env"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf(".env must exist with mode 0600: %v %v", fi, err)
	}
	env, _ := os.ReadFile(filepath.Join(home, ".env"))
	yaml, _ := os.ReadFile(filepath.Join(home, "config/instance.yaml"))
	if !strings.Contains(string(env), token) {
		t.Fatalf(".env lacks the token:\n%s", env)
	}
	for _, f := range []string{"config/instance.yaml", "docs/data_description.md"} {
		b, _ := os.ReadFile(filepath.Join(home, f))
		if strings.Contains(string(b), token) {
			t.Fatalf("the token leaked into %s", f)
		}
	}
	if !strings.Contains(string(yaml), "${KEBOOLA_STORAGE_TOKEN}") {
		t.Fatalf("instance.yaml must reference the token:\n%s", yaml)
	}
}

func parquetRows(t *testing.T, path string) int {
	t.Helper()
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM read_parquet(?)", path).Scan(&n); err != nil {
		t.Fatalf("DuckDB cannot read %s: %v", path, err)
	}
	return n
}

// The whole setup through flags: config, .env and a catalogue generated from the Storage API
// metadata, which then loads and syncs.
func TestInitKeboolaNonInteractive(t *testing.T) {
	kbc := keboolaProject(t)
	home := t.TempDir()
	args := []string{"init", "--non-interactive", "--name", "Acme Data", "--domain", "acme.com, acme.co.uk",
		"--source", "keboola", "--keboola-url", kbc.URL, "--keboola-project", "7", "--keboola-token", kbc.Token,
		"--public-url", "https://data.acme.com", "--tables", "all", "--large-rows", "5"}
	out, stderr, code := analyst(t, home, args...)
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, stderr)
	}
	checkTokenOnlyInEnv(t, home, kbc.Token)
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Instance.Instance.Name != "Acme Data" || strings.Join(cfg.Instance.Auth.Domains(), ",") != "acme.com,acme.co.uk" ||
		cfg.Instance.Instance.PublicURL != "https://data.acme.com" {
		t.Fatalf("instance: %+v %+v", cfg.Instance.Instance, cfg.Instance.Auth)
	}
	orders := tableByName(t, cfg, "orders")
	if orders.SyncStrategy != config.Incremental || orders.PartitionBy != "ordered_on" || orders.Folder != "shop" ||
		strings.Join(orders.PrimaryKey, ",") != "order_id" || orders.Description != "One row per order" {
		t.Fatalf("large table: %+v", orders)
	}
	company := tableByName(t, cfg, "company")
	if company.SyncStrategy != config.FullRefresh || strings.Join(company.PrimaryKey, ",") != "id" || company.Folder != "crm" {
		t.Fatalf("small table: %+v", company)
	}
	doc, _ := os.ReadFile(filepath.Join(home, "docs/data_description.md"))
	if !strings.Contains(string(doc), "| ordered_on | DATE |") || !strings.Contains(string(doc), "guessed") {
		t.Fatalf("the catalogue must document columns and guessed keys:\n%s", doc)
	}

	out, stderr, code = analyst(t, home, "sync")
	if code != 0 {
		t.Fatalf("sync of the generated instance: exit %d\n%s%s", code, out, stderr)
	}
	if n := parquetRows(t, filepath.Join(cfg.Paths.Parquet, "crm/company.parquet")); n != 2 {
		t.Fatalf("company: %d rows", n)
	}
	if n := parquetRows(t, filepath.Join(cfg.Paths.Parquet, "shop/orders/*.parquet")); n != 6 {
		t.Fatalf("orders: %d rows", n)
	}

	// A second init never overwrites silently.
	before, _ := os.ReadFile(filepath.Join(home, "config/instance.yaml"))
	_, stderr, code = analyst(t, home, append(args[:len(args):len(args)], "--name", "Other")...)
	after, _ := os.ReadFile(filepath.Join(home, "config/instance.yaml"))
	if code == 0 || !strings.Contains(stderr, "--force") || !bytes.Equal(before, after) {
		t.Fatalf("init over an instance: exit %d %s", code, stderr)
	}
	if _, stderr, code = analyst(t, home, append(args, "--name", "Other", "--force")...); code != 0 {
		t.Fatalf("init --force: %s", stderr)
	}

	// A wrong token fails at once, naming the problem but not the token.
	bad := t.TempDir()
	_, stderr, code = analyst(t, bad, "init", "--non-interactive", "--name", "X", "--domain", "x.com", "--source", "keboola",
		"--keboola-url", kbc.URL, "--keboola-project", "7", "--keboola-token", "wrong-token-123")
	if code == 0 || strings.Contains(stderr, "wrong-token-123") {
		t.Fatalf("bad token: exit %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(bad, "config/instance.yaml")); err == nil {
		t.Fatal("a failed init wrote instance.yaml")
	}
}

// A CSV folder through flags: one table per file and per folder of drops, types inferred.
func TestInitCSVNonInteractive(t *testing.T) {
	home := t.TempDir()
	testenv.WriteFile(t, filepath.Join(home, "files/customers.csv"), "customer_id;name;signed_up\n1;Ann;2024-01-02\n2;Bob;2024-02-03\n")
	testenv.WriteFile(t, filepath.Join(home, "files/visits/2024_01.csv"), "visit_id,customer_id,at\n1,1,2024-01-05T10:00:00Z\n")
	testenv.WriteFile(t, filepath.Join(home, "files/visits/2024_02.csv"), "visit_id,customer_id,at\n2,2,2024-02-05T11:00:00Z\n")
	out, stderr, code := analyst(t, home, "init", "--non-interactive", "--name", "CSV Co", "--domain", "csv.example",
		"--source", "csv", "--csv-path", "files")
	if code != 0 {
		t.Fatalf("init: %d\n%s%s", code, out, stderr)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if c := tableByName(t, cfg, "customers"); c.SyncStrategy != config.FullRefresh || c.PrimaryKey[0] != "customer_id" {
		t.Fatalf("customers: %+v", c)
	}
	if v := tableByName(t, cfg, "visits"); v.SyncStrategy != config.Incremental || v.PrimaryKey[0] != "visit_id" {
		t.Fatalf("visits: %+v", v)
	}
	doc, _ := os.ReadFile(filepath.Join(home, "docs/data_description.md"))
	if !strings.Contains(string(doc), "| signed_up | DATE |") || !strings.Contains(string(doc), "| at | TIMESTAMP_TZ |") {
		t.Fatalf("inferred types missing:\n%s", doc)
	}
	if out, stderr, code = analyst(t, home, "sync"); code != 0 {
		t.Fatalf("sync: %d\n%s%s", code, out, stderr)
	}
	if n := parquetRows(t, filepath.Join(cfg.Paths.Parquet, "csv/visits.parquet")); n != 2 {
		t.Fatalf("visits: %d rows", n)
	}
}

// terminal drives a command through a pseudo-terminal like a person: wait for a prompt, type.
type terminal struct {
	t    *testing.T
	f    *os.File
	mu   sync.Mutex
	seen bytes.Buffer
	pos  int
}

func startTerminal(t *testing.T, cmd *exec.Cmd) *terminal {
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, f: f}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			term.mu.Lock()
			term.seen.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { f.Close() })
	return term
}

// expect waits until s appears after what was already matched.
func (tm *terminal) expect(s string) {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tm.mu.Lock()
		rest := tm.seen.String()[tm.pos:]
		if i := strings.Index(rest, s); i >= 0 {
			tm.pos += i + len(s)
			tm.mu.Unlock()
			return
		}
		tm.mu.Unlock()
		if time.Now().After(deadline) {
			tm.t.Fatalf("waited for %q; the screen shows:\n%s", s, rest)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tm *terminal) answer(prompt, text string) {
	tm.t.Helper()
	tm.expect(prompt)
	io.WriteString(tm.f, text+"\r")
}

func (tm *terminal) screen() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.seen.String()
}

// The interactive wizard on a terminal: the token is typed without echo, a wrong one is asked
// again, tables are picked by number with one strategy changed.
func TestInitKeboolaOnATerminal(t *testing.T) {
	kbc := keboolaProject(t)
	home := t.TempDir()
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "old notes\n")
	cmd := exec.Command(binary, "--home", home, "init", "--large-rows", "5")
	tm := startTerminal(t, cmd)

	tm.answer("docs/data_description.md already exists. Overwrite it? [y/N]: ", "y")
	tm.answer("Company e-mail domain(s)", "acme.com")
	tm.answer("Instance name [Acme Data Analyst]: ", "")
	tm.answer("Data source (keboola, csv, bigquery) [keboola]: ", "")
	tm.answer("Public URL analysts will open [http://localhost:8080]: ", "")
	tm.answer("Keboola stack URL [https://connection.keboola.com]: ", kbc.URL)
	tm.answer("Keboola project id: ", "7")
	tm.answer("Keboola Storage API token (not shown): ", "wrong-token-0001")
	tm.expect("That did not work")
	tm.answer("Keboola stack URL", kbc.URL)
	tm.answer("Keboola project id: ", "7")
	tm.answer("Keboola Storage API token (not shown): ", kbc.Token)
	tm.expect("ok")
	tm.expect("in.c-shop.orders")
	tm.answer("Tables to sync (all, or numbers/ids separated by commas) [all]: ", "1,2")
	tm.expect("Suggested sync strategies:")
	tm.answer("Keep these strategies? [Y/n]: ", "n")
	tm.answer("Strategy for company (full_refresh, incremental, partitioned) [full_refresh]: ", "")
	tm.answer("Strategy for orders (full_refresh, incremental, partitioned) [incremental]: ", "partitioned")
	tm.expect("analyst sync")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("init: %v\n%s", err, tm.screen())
	}
	if strings.Contains(tm.screen(), kbc.Token) || strings.Contains(tm.screen(), "wrong-token-0001") {
		t.Fatalf("a token was echoed on the terminal:\n%s", tm.screen())
	}
	checkTokenOnlyInEnv(t, home, kbc.Token)
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if o := tableByName(t, cfg, "orders"); o.SyncStrategy != config.Partitioned || o.PartitionBy != "ordered_on" {
		t.Fatalf("orders: %+v", o)
	}
	if cfg.Instance.Instance.Name != "Acme Data Analyst" {
		t.Fatalf("default name: %q", cfg.Instance.Instance.Name)
	}
	if out, stderr, code := analyst(t, home, "sync"); code != 0 {
		t.Fatalf("sync: %d\n%s%s", code, out, stderr)
	}
}

func TestInitDemo(t *testing.T) {
	home := t.TempDir()
	if out, stderr, code := analyst(t, home, "init", "--demo", "--non-interactive"); code != 0 {
		t.Fatalf("init --demo: %d %s%s", code, out, stderr)
	}
	if _, err := config.Load(home); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := analyst(t, home, "init", "--demo", "--non-interactive")
	if code == 0 || !strings.Contains(stderr, "--force") {
		t.Fatalf("second init --demo must refuse: %d %s", code, stderr)
	}
}

// BigQuery through flags against the fake REST API: the dataset's tables are listed with their
// schemas, a partitioned table keeps its partition column, and the instance syncs.
func TestInitBigQueryNonInteractive(t *testing.T) {
	bq := bqtest.New(t, "acme")
	bq.AddTable(bqtest.Table{Dataset: "shop", Name: "orders", PartitionBy: "ordered_on",
		Fields: []string{"order_id:INTEGER", "ordered_on:DATE", "total:NUMERIC"},
		Rows:   [][]any{{1, "2024-01-02", "10.50"}, {2, "2024-02-03", "20.00"}, {3, "2024-02-04", "1.25"}}})
	bq.AddTable(bqtest.Table{Dataset: "shop", Name: "stores", Fields: []string{"id:INTEGER", "city:STRING"},
		Rows: [][]any{{1, "Brno"}}})
	home := t.TempDir()
	out, stderr, code := analyst(t, home, "init", "--non-interactive", "--name", "BQ", "--domain", "acme.com", "--source", "bigquery",
		"--bq-project", "acme", "--bq-dataset", "shop", "--bq-endpoint", bq.URL, "--bq-max-bytes", "10GB", "--large-rows", "3")
	if code != 0 {
		t.Fatalf("init: %d\n%s%s", code, out, stderr)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if o := tableByName(t, cfg, "orders"); o.SyncStrategy != config.Incremental || o.PartitionBy != "ordered_on" || o.PrimaryKey[0] != "order_id" {
		t.Fatalf("orders: %+v", o)
	}
	if s := tableByName(t, cfg, "stores"); s.SyncStrategy != config.FullRefresh {
		t.Fatalf("stores: %+v", s)
	}
	if out, stderr, code = analyst(t, home, "sync"); code != 0 {
		t.Fatalf("sync: %d\n%s%s", code, out, stderr)
	}
	if n := parquetRows(t, filepath.Join(cfg.Paths.Parquet, "shop/orders/*.parquet")); n != 3 {
		t.Fatalf("orders: %d rows", n)
	}
}
