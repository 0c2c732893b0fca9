package ops_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	_ "github.com/ai-data-analyst/analyst/connectors/csv"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/ops"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

const tables = 8

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// csvHome is an instance with `tables` CSV tables of 2000 rows each.
func csvHome(t *testing.T) string {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "config/instance.yaml"), "instance: {name: Backup test}\ndata_source:\n  type: csv\n  csv: {path: source}\n", 0o644)
	writeFile(t, filepath.Join(home, ".env"), "SECRET_TOKEN=s3cret\n", 0o600)
	var cat strings.Builder
	cat.WriteString("```yaml\ntables:\n")
	for i := range tables {
		fmt.Fprintf(&cat, "  - {id: t%d, name: t%d, folder: shop, description: T, primary_key: id, sync_strategy: full_refresh}\n", i, i)
		var csv strings.Builder
		csv.WriteString("id,name,amount,day\n")
		for r := range 2000 {
			fmt.Fprintf(&csv, "%d,name %d,%d.%02d,2024-01-%02d\n", r, r, r, r%100, r%28+1)
		}
		writeFile(t, filepath.Join(home, "source", fmt.Sprintf("t%d.csv", i)), csv.String(), 0o644)
	}
	cat.WriteString("```\n")
	writeFile(t, filepath.Join(home, "docs/data_description.md"), cat.String(), 0o644)
	return home
}

type instance struct {
	cfg    *config.Config
	db     *bolt.DB
	runs   *store.Runs
	users  *store.Users
	router *pipeline.Router
	stop   func()
}

// open runs the real pipeline on the instance, as serve does.
func open(t *testing.T, home string) *instance {
	t.Helper()
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenDB(cfg.Paths.Store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(db, nil); err != nil {
		t.Fatal(err)
	}
	log, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	runs, _ := store.NewRuns(db)
	users, _ := store.NewUsers(db)
	env := handlers.NewEnv(cfg, runs, nil)
	r, err := pipeline.NewRouter(log, pipeline.RouterConfig{MaxRetries: 1, InitialInterval: 10 * time.Millisecond, OnStage: env.TrackStage})
	if err != nil {
		t.Fatal(err)
	}
	handlers.Register(r, env)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	<-r.Running()
	in := &instance{cfg: cfg, db: db, runs: runs, users: users, router: r}
	in.stop = func() {
		cancel()
		r.Close()
		<-done
		env.Close()
		log.Close()
		store.CloseDB(db)
	}
	t.Cleanup(func() {
		if in.stop != nil {
			in.stop()
		}
	})
	return in
}

func (in *instance) close() { in.stop(); in.stop = nil }

func names() []string {
	var n []string
	for i := range tables {
		n = append(n, fmt.Sprintf("t%d", i))
	}
	return n
}

// syncEach starts one run per table and returns the first run's id.
func (in *instance) syncEach(t *testing.T) string {
	t.Helper()
	var first string
	for _, n := range names() {
		id, err := handlers.RequestSync(in.router.Publisher(), in.runs, []string{n}, pipeline.TriggerManual, "test", false)
		if err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = id
		}
	}
	return first
}

func waitRuns(t *testing.T, runs *store.Runs) []*store.Run {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		list, err := runs.List(0)
		if err != nil {
			t.Fatal(err)
		}
		settled := true
		for _, r := range list {
			settled = settled && (r.Status == store.RunSucceeded || r.Status == store.RunFailed)
		}
		if settled {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs did not finish: %+v", list[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countRows(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM read_parquet(?)", path).Scan(&n); err != nil {
		t.Fatalf("DuckDB cannot read %s: %v", path, err)
	}
	return n
}

// A backup taken while syncs run restores into a fresh folder as a working instance: users and
// runs are there, every published Parquet file reads in DuckDB, and the runs that were in
// flight at the backup finish after the restore, because their unacknowledged events are in the
// copied log.
func TestBackupWhileSyncingAndRestore(t *testing.T) {
	home := csvHome(t)
	in := open(t, home)
	if _, err := in.users.Add("ann@example.com", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, _, err := in.users.CreateToken("ann@example.com", "test"); err != nil {
		t.Fatal(err)
	}
	first := in.syncEach(t)
	waitRuns(t, in.runs)

	// Syncs keep running while two backups are taken, one of them state-only.
	var full, state bytes.Buffer
	for range 3 {
		in.syncEach(t)
	}
	time.Sleep(20 * time.Millisecond)
	st, err := ops.Backup(context.Background(), &full, in.db, in.cfg.Paths, ops.BackupOptions{Instance: "Backup test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Backup(context.Background(), &state, in.db, in.cfg.Paths, ops.BackupOptions{StateOnly: true}); err != nil {
		t.Fatal(err)
	}
	waitRuns(t, in.runs)
	in.close()
	if st.Files < tables+4 {
		t.Fatalf("only %d files in the backup", st.Files)
	}
	if state.Len() >= full.Len() {
		t.Fatalf("state-only backup (%d bytes) is not smaller than the full one (%d)", state.Len(), full.Len())
	}
	info, err := ops.Verify(bytes.NewReader(full.Bytes()))
	if err != nil || info.Instance != "Backup test" || info.StateOnly || info.SchemaVersion != store.SchemaVersion() {
		t.Fatalf("verify: %+v %v", info, err)
	}

	fresh := t.TempDir()
	freshPaths, _ := config.NewPaths(fresh, func(string) (string, bool) { return "", false })
	res, err := ops.Restore(bytes.NewReader(full.Bytes()), freshPaths, ops.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != st.Files {
		t.Fatalf("restored %d files, backed up %d", res.Files, st.Files)
	}
	if fi, err := os.Stat(filepath.Join(fresh, ".env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf(".env not restored with mode 0600: %v %v", fi, err)
	}
	// The source CSVs are not part of the instance's state; the admin brings them back.
	os.Symlink(filepath.Join(home, "source"), filepath.Join(fresh, "source"))

	out := open(t, fresh)
	if u, err := out.users.Get("ann@example.com"); err != nil || u.Role != store.RoleAdmin {
		t.Fatalf("user not restored: %v", err)
	}
	if r, err := out.runs.Get(first); err != nil || r.Status != store.RunSucceeded {
		t.Fatalf("first run not restored: %v %+v", err, r)
	}
	list := waitRuns(t, out.runs) // the runs in flight at the backup finish now
	if len(list) != 4*tables {
		t.Fatalf("%d runs after restore, want %d", len(list), 4*tables)
	}
	for _, r := range list {
		if r.Status != store.RunSucceeded {
			t.Fatalf("run %s %s after restore: %+v", r.RunID, r.Status, r.Tables[0])
		}
	}
	for _, n := range names() {
		if got := countRows(t, filepath.Join(out.cfg.Paths.Parquet, "shop", n+".parquet")); got != 2000 {
			t.Fatalf("%s: %d rows", n, got)
		}
	}
	out.close()

	// Restoring again over a live instance needs --force; the old trees are kept aside.
	if _, err := ops.Restore(bytes.NewReader(state.Bytes()), freshPaths, ops.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over an instance without force: %v", err)
	}
	res, err = ops.Restore(bytes.NewReader(full.Bytes()), freshPaths, ops.RestoreOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Kept) == 0 {
		t.Fatal("the replaced Parquet tree was not kept")
	}

	// Restore refuses while the store is in use.
	busy := open(t, fresh)
	if _, err := ops.Restore(bytes.NewReader(full.Bytes()), freshPaths, ops.RestoreOptions{Force: true}); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("restore into a running instance: %v", err)
	}
	busy.close()
}

// A truncated or altered archive is rejected before anything is moved into place.
func TestRestoreRejectsDamagedArchives(t *testing.T) {
	home := csvHome(t)
	in := open(t, home)
	var buf bytes.Buffer
	if _, err := ops.Backup(context.Background(), &buf, in.db, in.cfg.Paths, ops.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	in.close()
	archive := buf.Bytes()

	cases := map[string][]byte{
		"truncated": archive[:len(archive)*2/3],
		"not gzip":  []byte("hello"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			fresh := t.TempDir()
			p, _ := config.NewPaths(fresh, func(string) (string, bool) { return "", false })
			if _, err := ops.Restore(bytes.NewReader(data), p, ops.RestoreOptions{}); err == nil {
				t.Fatal("restored a damaged archive")
			}
			entries, _ := os.ReadDir(fresh)
			for _, e := range entries {
				if e.Name() != "data" {
					t.Fatalf("a failed restore left %s behind", e.Name())
				}
			}
			if _, err := os.Stat(p.Store); err == nil {
				t.Fatal("a failed restore left a store behind")
			}
		})
	}
}
