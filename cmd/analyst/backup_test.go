package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/ops"
)

// Offline backup and restore through the CLI: the restored folder is a working instance.
func TestBackupRestoreCLI(t *testing.T) {
	home := csvInstance(t)
	testenv.WriteFile(t, filepath.Join(home, "source/late.csv"), "id\n1\n2\n")
	if out, stderr, code := analyst(t, home, "sync"); code != 0 {
		t.Fatalf("sync: %d\n%s%s", code, out, stderr)
	}
	archive := filepath.Join(t.TempDir(), "b", "backup.tar.gz")
	out, stderr, code := analyst(t, home, "backup", archive)
	if code != 0 || !strings.Contains(out, "backup written") {
		t.Fatalf("backup: %d\n%s%s", code, out, stderr)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the archive holds .env and must be 0600: %v %v", fi, err)
	}

	fresh := t.TempDir()
	out, stderr, code = analyst(t, fresh, "restore", archive)
	if code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("restore: %d\n%s%s", code, out, stderr)
	}
	var rows int
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	if err := db.QueryRow("SELECT count(*) FROM read_parquet(?)", filepath.Join(fresh, "data/parquet/s/items.parquet")).Scan(&rows); err != nil || rows != 3 {
		t.Fatalf("restored Parquet: %d rows, %v", rows, err)
	}
	out, _, code = analyst(t, fresh, "events", "--json")
	if code != 0 || !strings.Contains(out, `"table.published"`) {
		t.Fatalf("the event log did not come back:\n%s", out)
	}

	_, stderr, code = analyst(t, fresh, "restore", archive)
	if code == 0 || !strings.Contains(stderr, "--force") {
		t.Fatalf("restore over an instance must need --force: %d %s", code, stderr)
	}
	if _, stderr, code = analyst(t, fresh, "restore", "--force", archive); code != 0 {
		t.Fatalf("restore --force: %s", stderr)
	}
}

// With the store held by a server, backup goes through POST /api/admin/backup with the admin
// token, verifies what arrived, and never leaves a partial archive at OUT.
func TestBackupThroughAPI(t *testing.T) {
	home := csvInstance(t)
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.OpenStore(t, cfg.Paths.Store)
	truncate := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/admin/backup" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer admin-token" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"admin rights required"}`)
			return
		}
		var out io.Writer = w
		if truncate {
			out = &limitWriter{w: w, n: 300}
		}
		ops.Backup(r.Context(), out, db, cfg.Paths, ops.BackupOptions{StateOnly: r.URL.Query().Get("state_only") == "true"})
	}))
	defer srv.Close()

	g := &globals{home: home, logger: slog.New(slog.DiscardHandler)}
	dir := t.TempDir()
	archive := filepath.Join(dir, "api.tar.gz")

	// The store is in use, so the CLI goes to ANALYST_ADDR with ANALYST_ADMIN_TOKEN.
	t.Setenv("ANALYST_ADDR", strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv("ANALYST_ADMIN_TOKEN", "admin-token")
	if err := runBackup(context.Background(), g, []string{"--state-only", archive}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(archive)
	info, err := ops.Verify(f)
	f.Close()
	if err != nil || !info.StateOnly {
		t.Fatalf("archive from the API: %+v %v", info, err)
	}

	err = runBackup(context.Background(), g, []string{"--server", srv.URL, "--token", "wrong", filepath.Join(dir, "denied.tar.gz")})
	if err == nil || !strings.Contains(err.Error(), "admin rights required") {
		t.Fatalf("a refused token: %v", err)
	}
	truncate = true
	err = runBackup(context.Background(), g, []string{filepath.Join(dir, "cut.tar.gz")})
	if err == nil {
		t.Fatal("a truncated stream was accepted")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("a failed backup left files behind: %v", entries)
	}
}

// limitWriter passes n bytes, then fails, like a connection that drops.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		l.w.Write(p[:l.n])
		l.n = 0
		return 0, io.ErrClosedPipe
	}
	l.n -= len(p)
	return l.w.Write(p)
}
