package notify_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/notify"
)

// writeParquet writes the result of a query as a Parquet file, with DuckDB.
func writeParquet(t *testing.T, path, query string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("COPY (" + query + ") TO '" + path + "' (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
}

func script(t *testing.T, dir, name, content string) *notify.Script {
	t.Helper()
	s, err := notify.NewScripts(dir).Put("ann@example.com", name, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func runScript(t *testing.T, r *notify.Runner, sc *notify.Script, tables []config.Table) notify.Outcome {
	t.Helper()
	return r.Run(context.Background(), notify.Run{Script: sc, User: "ann@example.com", Tables: tables, Trigger: notify.TriggerManual})
}

func TestRunnerContract(t *testing.T) {
	dir := t.TempDir()
	r := &notify.Runner{TempRoot: t.TempDir(), ParquetRoot: t.TempDir()}
	cases := []struct {
		name, body string
		wantErr    string
		notify     bool
	}{
		{"alert.sh", `echo "diagnostics go to stderr" >&2
echo '{"notify": true, "title": "Revenue dropped 25%", "message": "Today 75", "cooldown": "6h", "data": {"x": 1}}'`, "", true},
		{"quiet.sh", `echo '{"notify": false}'`, "", false},
		{"garbage.sh", `echo 'hello, this is not json'`, "not one JSON object", false},
		{"two.sh", `echo '{"notify": true, "title": "a"}'; echo '{"notify": true}'`, "more than one JSON value", false},
		{"empty.sh", `true`, "printed nothing", false},
		{"array.sh", `echo '[1,2]'`, "not one JSON object", false},
		{"nonotify.sh", `echo '{"title": "x"}'`, `no "notify" field`, false},
		{"crash.sh", `echo 'table orders missing' >&2; exit 3`, "exit status 3: table orders missing", false},
		{"badcooldown.sh", `echo '{"notify": true, "title": "t", "cooldown": {"h": 1}}'`, `"cooldown" must be`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := runScript(t, r, script(t, dir, c.name, c.body), nil)
			if c.wantErr == "" && out.Err != nil || c.wantErr != "" && (out.Err == nil || !strings.Contains(out.Err.Error(), c.wantErr)) {
				t.Fatalf("error = %v, want %q", out.Err, c.wantErr)
			}
			if out.Result.Notify != c.notify {
				t.Fatalf("notify = %v", out.Result.Notify)
			}
		})
	}
}

func TestRunnerTimeoutKillsTheScriptAndItsChildren(t *testing.T) {
	dir := t.TempDir()
	r := &notify.Runner{TempRoot: t.TempDir(), ParquetRoot: t.TempDir(), Timeout: 5 * time.Second}
	marker := filepath.Join(t.TempDir(), "survived")
	sc := script(t, dir, "hang.sh", "# timeout: 1s\n(sleep 3; touch "+marker+") &\nsleep 60\n")
	start := time.Now()
	out := runScript(t, r, sc, nil)
	took := time.Since(start)
	if out.Err == nil || !strings.Contains(out.Err.Error(), "timed out after 1s") {
		t.Fatalf("error = %v", out.Err)
	}
	if took > 4*time.Second {
		t.Fatalf("a hanging script held the runner for %s", took)
	}
	t.Logf("hanging script stopped after %s", took.Round(time.Millisecond))
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the script's background child outlived the timeout")
	}
}

func TestRunnerEnvironmentLimitsAndDatabase(t *testing.T) {
	cfg := instance(t)
	writeParquet(t, filepath.Join(cfg.Paths.Parquet, "sales/orders.parquet"), "SELECT 1 AS id, 10.5 AS amount UNION ALL SELECT 2, 20.25")
	writeParquet(t, filepath.Join(cfg.Paths.Parquet, "people/salaries.parquet"), "SELECT 1 AS id, 1000 AS salary")
	t.Setenv("ANALYST_SECRET_FOR_TEST", "s3cret")
	r := &notify.Runner{TempRoot: t.TempDir(), ParquetRoot: cfg.Paths.Parquet, MemoryLimit: 512 << 20}
	sc := script(t, t.TempDir(), "env.sh", `cat <<EOF
{"notify": false, "data": {"secret": "$ANALYST_SECRET_FOR_TEST", "home": "$HOME", "pwd": "$(pwd)", "db": "$ANALYST_DUCKDB",
 "mem": "$(ulimit -v)", "path": "$PATH", "user": "$ANALYST_USER", "trigger": "$ANALYST_TRIGGER"}}
EOF`)
	orders, _ := cfg.Catalogue.Table("orders")
	out := runScript(t, r, sc, []config.Table{orders})
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	data := string(out.Result.Data)
	for _, want := range []string{`"secret": ""`, `"mem": "524288"`, `"path": "/usr/local/bin:/usr/bin:/bin"`, `"user": "ann@example.com"`, `"trigger": "manual"`} {
		if !strings.Contains(data, want) {
			t.Errorf("script saw %s; want %s", data, want)
		}
	}
	if !strings.Contains(data, `"pwd": "`+r.TempRoot) {
		t.Errorf("the script must run in its private temp dir: %s", data)
	}

	// The database a script gets holds views of the visible tables only.
	dbPath := filepath.Join(t.TempDir(), "a.duckdb")
	if err := notify.BuildDatabase(context.Background(), dbPath, cfg.Paths.Parquet, []config.Table{orders}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", dbPath+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sum float64
	if err := db.QueryRow("SELECT sum(amount) FROM orders").Scan(&sum); err != nil || sum != 30.75 {
		t.Fatalf("sum = %v, %v", sum, err)
	}
	if _, err := db.Exec("SELECT * FROM salaries"); err == nil {
		t.Fatal("a table the user may not see is in their database")
	}
	var files int
	if err := db.QueryRow("SELECT files FROM analyst_tables WHERE name = 'orders'").Scan(&files); err != nil || files != 1 {
		t.Fatalf("analyst_tables: %d, %v", files, err)
	}
}

func TestRunnerMemoryLimitIsEnforced(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	r := &notify.Runner{TempRoot: t.TempDir(), ParquetRoot: t.TempDir(), MemoryLimit: 256 << 20, Python: py}
	sc := script(t, t.TempDir(), "hog.py", "x = bytearray(512 * 1024 * 1024)\nprint('{\"notify\": true, \"title\": \"allocated\"}')\n")
	out := runScript(t, r, sc, nil)
	if out.Err == nil || !strings.Contains(out.Err.Error(), "MemoryError") {
		t.Fatalf("a script over its memory limit must fail with MemoryError; got %v", out.Err)
	}
}

func TestRunnerImageMustStayInTempDir(t *testing.T) {
	r := &notify.Runner{TempRoot: t.TempDir(), ParquetRoot: t.TempDir()}
	dir := t.TempDir()
	// A 1x1 PNG written by the script into its temp dir is read; /etc/passwd is refused.
	png := `printf '\211PNG\r\n\032\n\0\0\0\rIHDR\0\0\0\1\0\0\0\1\10\6\0\0\0\37\25\304\211' > "$TMPDIR/chart.png"`
	out := runScript(t, r, script(t, dir, "img.sh", png+"\n"+`echo "{\"notify\": true, \"title\": \"t\", \"image_path\": \"$TMPDIR/chart.png\"}"`), nil)
	if out.Err != nil || out.ImageExt != ".png" || len(out.Image) == 0 {
		t.Fatalf("image: %v %q %d", out.Err, out.ImageExt, len(out.Image))
	}
	out = runScript(t, r, script(t, dir, "steal.sh", `echo '{"notify": true, "title": "t", "image_path": "/etc/passwd"}'`), nil)
	if out.Image != nil || !strings.Contains(out.Warning, "outside the script's temp dir") {
		t.Fatalf("image outside the temp dir: %q %d", out.Warning, len(out.Image))
	}
}

// A script reads the Parquet of the tables its owner may see and nothing else of the server:
// not another table's file, not the store, not the server's environment.
func TestRunnerSandboxKeepsOtherDataOut(t *testing.T) {
	root := t.TempDir()
	writeParquet(t, filepath.Join(root, "sales/orders.parquet"), "SELECT 1 AS id")
	writeParquet(t, filepath.Join(root, "private/salaries.parquet"), "SELECT 1 AS id")
	secret := filepath.Join(t.TempDir(), "analyst.db")
	os.WriteFile(secret, []byte("store"), 0o600)
	r := &notify.Runner{TempRoot: t.TempDir(), ParquetRoot: root}
	visible := []config.Table{{Name: "orders", Folder: "sales", SyncStrategy: config.FullRefresh}}
	sc := script(t, t.TempDir(), "probe.sh", `
ok=$(cat "`+filepath.Join(root, "sales/orders.parquet")+`" >/dev/null 2>&1 && echo yes || echo no)
other=$(cat "`+filepath.Join(root, "private/salaries.parquet")+`" >/dev/null 2>&1 && echo yes || echo no)
store=$(cat "`+secret+`" >/dev/null 2>&1 && echo yes || echo no)
env=$(cat /proc/1/environ >/dev/null 2>&1 && echo yes || echo no)
echo "{\"notify\": true, \"title\": \"own=$ok other=$other store=$store env=$env\"}"`)
	out := runScript(t, r, sc, visible)
	if out.Err != nil {
		t.Fatalf("probe failed: %v (%s)", out.Err, out.Stderr)
	}
	if out.Result.Title != "own=yes other=no store=no env=no" {
		t.Fatalf("sandbox: %s", out.Result.Title)
	}
}
