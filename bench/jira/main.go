// Command jira measures the Jira webhook path end to end: signed webhooks at a steady rate
// into the server (webhook route, event log, fetch from a fake Jira Cloud, raw JSON, month
// partition writer), into a month that already holds -seed issues. It reports the sustained
// rate and the latency from sending a webhook to its change being visible in the month's
// Parquet file (read back with DuckDB), p50/p95/p99.
//
//	go run ./bench/jira -seed 50000 -rate 200 -duration 30s
package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/store"
)

const secret = "bench-secret"

func main() {
	seed := flag.Int("seed", 50_000, "issues already in the month")
	rate := flag.Float64("rate", 200, "webhooks per second")
	duration := flag.Duration("duration", 30*time.Second, "how long to send")
	pool := flag.Int("pool", 5_000, "distinct issues the webhooks are about (half of them among the seeded ones)")
	latency := flag.Duration("jira-latency", 20*time.Millisecond, "reply time of the fake Jira")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/jira:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*seed, *rate, *duration, *pool, *latency); err != nil {
		fmt.Fprintln(os.Stderr, "bench/jira:", err)
		os.Exit(1)
	}
}

func run(seed int, rate float64, duration time.Duration, pool int, jiraLatency time.Duration) error {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: benchLevel()})))
	home, err := os.MkdirTemp("", "bench-jira-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	fake := jiratest.New()
	defer fake.Close()
	cfg, err := instance(home, fake.URL)
	if err != nil {
		return err
	}
	const month = "2025-01"
	created := func(i int) string { return fmt.Sprintf("2025-01-%02dT%02d:00:00.000+0000", 1+i%28, i%24) }
	shape := jiratest.Shape{Comments: 2, Histories: 3}

	// Seed the month straight through the partition writer.
	start := time.Now()
	tr := jira.NewTransformer("acme.atlassian.net", nil, "")
	rows := jira.Rows{}
	for i := range seed {
		is := fake.NewIssue(fmt.Sprintf("SEED-%d", i+1), 100000+i, created(i), shape)
		is["changelog"] = map[string]any{"histories": is["changelog"]}
		r, err := tr.Transform(is)
		if err != nil {
			return err
		}
		for t, rr := range r {
			rows[t] = append(rows[t], rr...)
		}
	}
	dir := filepath.Join(cfg.Paths.Parquet, "jira")
	if _, err := jira.WritePartition(context.Background(), dir, tr.Tables(), month, nil, rows); err != nil {
		return err
	}
	rows = nil
	monthFile := jira.PartitionPath(dir, "issues", month)
	fi, _ := os.Stat(monthFile)
	fmt.Printf("seeded %d issues into %s (%.1f MB issues file) in %v\n", seed, month, float64(fi.Size())/1e6, time.Since(start).Round(time.Millisecond))

	// The issues webhooks are about: half seeded ones, half new ones of the same month.
	keys := make([]string, pool)
	issues := make([]map[string]any, pool)
	for i := range pool {
		if i%2 == 0 {
			keys[i] = fmt.Sprintf("SEED-%d", i/2+1)
			issues[i] = fake.NewIssue(keys[i], 100000+i/2, created(i/2), shape)
		} else {
			keys[i] = fmt.Sprintf("NEW-%d", i)
			issues[i] = fake.NewIssue(keys[i], 900000+i, created(i), shape)
		}
		fake.Put(issues[i])
	}
	fake.Latency = jiraLatency

	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200) // as `analyst serve` does
	}
	srv, stop, err := serve(cfg)
	if err != nil {
		return err
	}
	defer stop()

	// Observer: each time the month file changes, read which version of each issue it shows.
	type version struct {
		n    int
		sent time.Time
	}
	var (
		mu        sync.Mutex
		sentByKey = map[string][]version{} // versions not yet visible, in order
		latencies []time.Duration
		rewrites  int
		lastSeen  time.Time
	)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	done := make(chan struct{})
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		var lastMod time.Time
		var lastSize int64
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			fi, err := os.Stat(monthFile)
			if err != nil || (fi.ModTime().Equal(lastMod) && fi.Size() == lastSize) {
				continue
			}
			r, err := db.Query("SELECT issue_key, summary FROM read_parquet('" + monthFile + "') WHERE summary LIKE 'v%'")
			if err != nil {
				continue // replaced while read: read again
			}
			now := time.Now()
			lastMod, lastSize = fi.ModTime(), fi.Size()
			mu.Lock()
			rewrites++
			for r.Next() {
				var k, s string
				r.Scan(&k, &s)
				n, _ := strconv.Atoi(strings.TrimPrefix(s, "v"))
				vs := sentByKey[k]
				i := 0
				for i < len(vs) && vs[i].n <= n {
					latencies = append(latencies, now.Sub(vs[i].sent))
					i++
				}
				if i > 0 {
					sentByKey[k] = vs[i:]
					lastSeen = now
				}
			}
			mu.Unlock()
			r.Close()
		}
	}()

	// Load: one webhook every 1/rate, each a new summary for an issue of the pool.
	var (
		wg       sync.WaitGroup
		sent     atomic.Int64
		failed   atomic.Int64
		keyLocks = make([]sync.Mutex, pool)
		client   = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	)
	interval := time.Duration(float64(time.Second) / rate)
	begin := time.Now()
	next := begin
	for n := 1; time.Since(begin) < duration; n++ {
		time.Sleep(time.Until(next))
		next = next.Add(interval)
		i := (n * 7919) % pool
		wg.Go(func() {
			keyLocks[i].Lock() // Jira sends one issue's changes in order
			defer keyLocks[i].Unlock()
			summary := "v" + strconv.Itoa(n)
			// As Jira does for an edit: the field, the updated time and a changelog entry.
			fake.Update(keys[i], func(is map[string]any) {
				f := is["fields"].(map[string]any)
				now := time.Now().Format("2006-01-02T15:04:05.000-0700")
				is["changelog"] = append(is["changelog"].([]any), map[string]any{
					"id": strconv.Itoa(10_000_000 + n), "created": now,
					"author": map[string]any{"accountId": "acc-agent", "emailAddress": "agent@example.com", "displayName": "User agent"},
					"items": []any{map[string]any{"field": "summary", "fieldtype": "jira", "fieldId": "summary",
						"fromString": f["summary"], "toString": summary}},
				})
				f["summary"], f["updated"] = summary, now
			})
			body := jiratest.Webhook("jira:issue_updated", issues[i], nil)
			req, _ := http.NewRequest(http.MethodPost, srv+"/webhooks/jira", bytes.NewReader(body))
			req.Header.Set("X-Hub-Signature-256", jiratest.Sign(secret, body))
			at := time.Now()
			mu.Lock()
			sentByKey[keys[i]] = append(sentByKey[keys[i]], version{n, at})
			mu.Unlock()
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				failed.Add(1)
				return
			}
			resp.Body.Close()
			sent.Add(1)
		})
	}
	wg.Wait()
	sendTime := time.Since(begin)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		left := 0
		for _, vs := range sentByKey {
			left += len(vs)
		}
		mu.Unlock()
		if left == 0 || time.Now().After(deadline) {
			if left > 0 {
				fmt.Printf("NOT VISIBLE after 2 min: %d changes\n", left)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(done)
	<-observed
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Round(time.Millisecond)
	}
	total := lastSeen.Sub(begin)
	fmt.Printf("sent %d webhooks in %v (%.0f/s accepted, %d failed); month holds %d issues\n",
		sent.Load(), sendTime.Round(time.Millisecond), float64(sent.Load())/sendTime.Seconds(), failed.Load(), seed+pool/2)
	fmt.Printf("changes visible in Parquet: %d, last at %v: %.0f changes/s sustained\n", len(latencies), total.Round(time.Millisecond), float64(len(latencies))/total.Seconds())
	fmt.Printf("webhook -> Parquet-visible latency: p50 %v  p95 %v  p99 %v  max %v  (%d month rewrites seen)\n",
		pct(0.50), pct(0.95), pct(0.99), pct(1), rewrites)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("live heap after the run: %d MiB (server with its month cache, fake Jira, observer)\n", ms.HeapAlloc>>20)
	return nil
}

func instance(home, fakeURL string) (*config.Config, error) {
	files := map[string]string{
		"config/instance.yaml": fmt.Sprintf("instance: {name: Jira bench}\ndata_source:\n  type: csv\n  csv: {path: source}\n"+
			"jira:\n  domain: acme.atlassian.net\n  base_url: %[1]s\n  sla_base_url: %[1]s\n  cloud_id: %[2]s\n  email: %[3]s\n  api_token: %[4]s\n"+
			"  sla_email: %[5]s\n  sla_api_token: %[6]s\n  webhook_secret: %[7]s\n",
			fakeURL, jiratest.CloudID, jiratest.Email, jiratest.Token, jiratest.SLAEmail, jiratest.SLAToken, secret),
		"docs/data_description.md": "# Tables\n\n```yaml\ntables:\n  - {id: shop.orders, name: orders, folder: shop, primary_key: id, sync_strategy: full_refresh, csv: {path: orders.csv}}\n```\n",
	}
	for name, content := range files {
		p := filepath.Join(home, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	return config.Load(home)
}

// serve runs the pipeline with the Jira stages and the webhook route, as `analyst serve` does.
func serve(cfg *config.Config) (string, func(), error) {
	db, err := store.OpenDB(cfg.Paths.Store)
	if err != nil {
		return "", nil, err
	}
	log, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		return "", nil, err
	}
	runs, err := store.NewRuns(db)
	if err != nil {
		return "", nil, err
	}
	env := handlers.NewEnv(cfg, runs, nil)
	r, err := pipeline.NewRouter(log, pipeline.RouterConfig{OnStage: env.TrackStage})
	if err != nil {
		return "", nil, err
	}
	handlers.Register(r, env)
	j, err := handlers.NewJira(handlers.JiraOptions{Config: cfg, DB: db, Log: log})
	if err != nil {
		return "", nil, err
	}
	if err := j.Register(r); err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	<-r.Running()
	m := mux.NewRouter()
	portal.JiraRoutes(m, cfg, j, nil)
	srv := httptest.NewServer(m)
	return srv.URL, func() {
		srv.Close()
		cancel()
		r.Close()
		log.Close()
		env.Close()
		store.CloseDB(db)
	}, nil
}

func benchLevel() slog.Level {
	if os.Getenv("BENCH_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}
