// Command pull benchmarks `analyst pull` against `rsync -a --delete` from an rsync daemon, both
// on 127.0.0.1, over the same published Parquet: a first pull into an empty folder, a pull
// with nothing changed, and a pull after one file changed. The server side (the real portal on
// a real store) runs in this process; the `analyst` binary and rsync run as child processes.
//
//	pull -analyst BIN [-dir DIR] [-files 1000] [-size 1GB] [-rounds 3]
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/ai-data-analyst/analyst/bench/benchutil"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/store"
)

const tables = 10 // the files are spread over this many daily-partitioned tables

func main() {
	analyst := flag.String("analyst", "", "the analyst binary to benchmark (required)")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "analyst-bench-pull"), "work folder")
	files := flag.Int("files", 1000, "Parquet files to publish")
	size := flag.String("size", "1GB", "total size of the published files")
	rounds := flag.Int("rounds", 3, "repetitions of each scenario (the median is reported)")
	flag.Parse()
	if err := run(*analyst, *dir, *files, *size, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench/pull:", err)
		os.Exit(1)
	}
}

func run(analyst, dir string, nfiles int, sizeArg string, rounds int) error {
	if analyst == "" {
		return fmt.Errorf("-analyst BIN is required")
	}
	total, err := benchutil.ParseSize(sizeArg)
	if err != nil {
		return fmt.Errorf("-size %q: %w", sizeArg, err)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	home := filepath.Join(dir, fmt.Sprintf("home-%d-%d", nfiles, total))
	cfg, err := instance(home, nfiles, total)
	if err != nil {
		return err
	}
	if err := publish(cfg); err != nil {
		return err
	}
	url, token, stop, err := serve(cfg)
	if err != nil {
		return err
	}
	defer stop()
	rsyncURL, stopRsync, err := rsyncDaemon(dir, cfg.Paths.Parquet)
	if err != nil {
		return err
	}
	defer stopRsync()

	pullDir, rsyncDir := filepath.Join(dir, "pulled"), filepath.Join(dir, "rsynced")
	pull := func() (time.Duration, int64, error) {
		start := time.Now()
		out, err := exec.Command(analyst, "pull", "--server", url, "--token", token, "--dir", pullDir, "--json").Output()
		d := time.Since(start)
		if err != nil {
			return d, 0, fmt.Errorf("analyst pull: %w: %s", err, stderrOf(err))
		}
		var res struct {
			Bytes  int64 `json:"bytes"`
			Pulled int   `json:"pulled"`
		}
		return d, res.Bytes, json.Unmarshal(out, &res)
	}
	rsync := func() (time.Duration, int64, error) {
		start := time.Now()
		out, err := exec.Command("rsync", "-a", "--delete", "--stats", rsyncURL, rsyncDir+"/").Output()
		d := time.Since(start)
		if err != nil {
			return d, 0, fmt.Errorf("rsync: %w: %s", err, stderrOf(err))
		}
		return d, literalData(string(out)), nil
	}
	fmt.Printf("published: %d files, %.0f MiB in %d tables; %d rounds, median times\n", nfiles, float64(total)/(1<<20), tables, rounds)
	fmt.Printf("%-18s %10s %10s %8s %14s %14s\n", "scenario", "pull", "rsync", "ratio", "pull bytes", "rsync data")
	scenario := func(name string, prepare func(round int) error) error {
		var pt, rt []time.Duration
		var pb, rb int64
		for i := range rounds {
			if err := prepare(i); err != nil {
				return err
			}
			// Alternate who goes first, so neither always meets the colder cache.
			steps := []func() error{
				func() error { d, b, err := pull(); pt, pb = append(pt, d), b; return err },
				func() error { d, b, err := rsync(); rt, rb = append(rt, d), b; return err },
			}
			if i%2 == 1 {
				steps[0], steps[1] = steps[1], steps[0]
			}
			for _, s := range steps {
				if err := s(); err != nil {
					return err
				}
			}
		}
		p, r := median(pt), median(rt)
		fmt.Printf("%-18s %10s %10s %7.2fx %14d %14d\n", name, p.Round(time.Millisecond), r.Round(time.Millisecond), float64(p)/float64(r), pb, rb)
		return nil
	}
	if err := scenario("first pull", func(int) error {
		for _, d := range []string{pullDir, rsyncDir} {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
		}
		return os.MkdirAll(rsyncDir, 0o755)
	}); err != nil {
		return err
	}
	if err := scenario("no change", func(int) error { return nil }); err != nil {
		return err
	}
	if err := scenario("one file changed", func(round int) error {
		return changeOneFile(cfg, nfiles, total, round)
	}); err != nil {
		return err
	}
	fmt.Println("ratio = pull time / rsync time (below 1 is faster); data = file bytes sent (rsync: literal data)")
	return nil
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

var literalRe = regexp.MustCompile(`Literal data: ([\d,.]+)`)

func literalData(stats string) int64 {
	m := literalRe.FindStringSubmatch(stats)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(strings.NewReplacer(",", "", ".", "").Replace(m[1]), 10, 64)
	return n
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// instance writes (once) an instance with `tables` daily-partitioned tables holding nfiles
// Parquet files of about total/nfiles bytes each of random, incompressible doubles.
func instance(home string, nfiles int, total int64) (*config.Config, error) {
	write := func(rel, content string) error {
		p := filepath.Join(home, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(content), 0o644)
	}
	var doc strings.Builder
	doc.WriteString("# Bench\n\n```yaml\ntables:\n")
	for i := range tables {
		fmt.Fprintf(&doc, "  - {id: t%02d, name: t%02d, folder: bench, primary_key: id, sync_strategy: partitioned, partition_by: day, partition_granularity: day}\n", i, i)
	}
	doc.WriteString("```\n")
	if err := write("config/instance.yaml", "instance: {name: Bench}\ndata_source: {type: csv, csv: {path: src}}\n"); err != nil {
		return nil, err
	}
	if err := write("docs/data_description.md", doc.String()); err != nil {
		return nil, err
	}
	cfg, err := config.Load(home)
	if err != nil {
		return nil, err
	}
	done := filepath.Join(home, "generated")
	if _, err := os.Stat(done); err == nil {
		return cfg, nil
	}
	fmt.Fprintf(os.Stderr, "generating %d files in %s ...\n", nfiles, cfg.Paths.Parquet)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	for i := range nfiles {
		if err := writeFile(db, cfg, i, total/int64(nfiles), 0); err != nil {
			return nil, err
		}
	}
	return cfg, os.WriteFile(done, nil, 0o644)
}

// writeFile writes file i (table i%tables, day i/tables) with the given seed variant.
func writeFile(db *sql.DB, cfg *config.Config, i int, size int64, variant int) error {
	day := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/tables)
	p := filepath.Join(cfg.Paths.Parquet, "bench", fmt.Sprintf("t%02d", i%tables), day.Format("2006_01_02")+".parquet")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	rows := size / 32 // four uncompressed doubles a row
	tmp := filepath.Join(filepath.Dir(p), ".tmp-"+filepath.Base(p))
	q := fmt.Sprintf(`COPY (SELECT range + %d AS id, random() AS a, random() AS b, random() AS c FROM range(%d))
		TO '%s' (FORMAT parquet, COMPRESSION uncompressed)`, variant*int(rows), rows, tmp)
	if _, err := db.Exec(q); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func changeOneFile(cfg *config.Config, nfiles int, total int64, round int) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	if err := writeFile(db, cfg, nfiles/2, total/int64(nfiles), round+1); err != nil {
		return err
	}
	return publish(cfg)
}

// publish does the publish stage's manifest step.
func publish(cfg *config.Config) error {
	files, err := store.ScanPublished(cfg)
	if err != nil {
		return err
	}
	_, _, err = store.UpdateManifest(store.ManifestPath(cfg), files, time.Now())
	return err
}

// serve runs the portal on 127.0.0.1 with one analyst and returns its URL and their token.
func serve(cfg *config.Config) (string, string, func(), error) {
	os.Remove(cfg.Paths.Store)
	db, err := store.OpenDB(cfg.Paths.Store)
	if err != nil {
		return "", "", nil, err
	}
	users, err := store.NewUsers(db)
	if err != nil {
		return "", "", nil, err
	}
	runs, err := store.NewRuns(db)
	if err != nil {
		return "", "", nil, err
	}
	if _, err := users.Add("bench@example.com", store.RoleAnalyst); err != nil {
		return "", "", nil, err
	}
	token, _, err := users.CreateToken("bench@example.com", "bench")
	if err != nil {
		return "", "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	srv := &http.Server{Handler: portal.New(portal.Deps{Config: cfg, Users: users, Runs: runs, Policy: &access.Policy{Config: cfg, Users: users}})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), token, func() {
		srv.Shutdown(context.Background())
		store.CloseDB(db)
	}, nil
}

// rsyncDaemon starts `rsync --daemon` on 127.0.0.1 serving root as module "parquet".
func rsyncDaemon(dir, root string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(dir, "rsyncd.conf")
	content := fmt.Sprintf("use chroot = no\nlog file = %s\npid file = %s\n[parquet]\n  path = %s\n  read only = yes\n",
		filepath.Join(dir, "rsyncd.log"), filepath.Join(dir, "rsyncd.pid"), root)
	if os.Getuid() == 0 {
		content = "uid = root\ngid = root\n" + content
	}
	if err := os.WriteFile(conf, []byte(content), 0o644); err != nil {
		return "", nil, err
	}
	os.Remove(filepath.Join(dir, "rsyncd.pid"))
	cmd := exec.Command("rsync", "--daemon", "--no-detach", "--config="+conf, "--address=127.0.0.1", "--port="+strconv.Itoa(port))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start rsync daemon: %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("rsync daemon did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("rsync://127.0.0.1:%d/parquet/", port), stop, nil
}
