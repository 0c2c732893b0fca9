package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/pipeline/natsembed"
	"github.com/ai-data-analyst/analyst/store"
)

// publishedCounts reads every table.published event in the stream: table -> count.
func publishedCounts(t *testing.T, js nats.JetStreamContext) map[string]int {
	t.Helper()
	sub, err := js.SubscribeSync(pipeline.TopicTablePublished, nats.OrderedConsumer(), nats.DeliverAll(), nats.BindStream("ANALYST"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	counts := map[string]int{}
	for {
		m, err := sub.NextMsg(300 * time.Millisecond)
		if err != nil {
			return counts
		}
		var ev struct {
			Table string `json:"table"`
		}
		json.Unmarshal(m.Data, &ev)
		counts[ev.Table]++
	}
}

// Three worker processes share 50 tables over a real JetStream server; one is killed mid-way.
// Its unacknowledged messages go to the others, and every table is published exactly once.
func TestWorkersShareTheWorkAndSurviveAKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three worker processes")
	}
	ns := startNATS(t)

	const tables, rows = 50, 3000
	home := t.TempDir()
	testenv.WriteFile(t, filepath.Join(home, "config/instance.yaml"), fmt.Sprintf(
		"instance: {name: Scale}\ndata_source: {type: csv, csv: {path: source}}\npipeline: {backend: nats, nats_url: %q, concurrency: 6}\n", ns.ClientURL()))
	var cat strings.Builder
	cat.WriteString("```yaml\ntables:\n")
	var csv strings.Builder
	csv.WriteString("id,name,amount\n")
	for r := range rows {
		fmt.Fprintf(&csv, "%d,item %d,%d.5\n", r, r, r)
	}
	var names []string
	for i := range tables {
		name := fmt.Sprintf("t%02d", i)
		names = append(names, name)
		fmt.Fprintf(&cat, "  - {id: %s, name: %s, folder: scale, description: T, primary_key: id, sync_strategy: full_refresh}\n", name, name)
		testenv.WriteFile(t, filepath.Join(home, "source", name+".csv"), csv.String())
	}
	cat.WriteString("```\n")
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), cat.String())

	var workers []*exec.Cmd
	var logs []*testenv.SyncBuffer
	for i := range 3 {
		cmd := exec.Command(binary, "--home", home, "worker", "--id", fmt.Sprintf("w%d", i), "--ack-wait", "3s")
		buf := &testenv.SyncBuffer{}
		cmd.Stderr = buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		workers, logs = append(workers, cmd), append(logs, buf)
	}
	defer func() {
		for _, w := range workers {
			w.Process.Signal(syscall.SIGTERM)
			w.Wait()
		}
	}()
	for i, l := range logs {
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(l.String(), "worker running") {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d did not start:\n%s", i, l.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The api process: portal and triggers; the run's records follow the workers' events.
	api := startServer(t, home, "scale-test-admin-token-0001", "--role", "api")
	apiLog := api.Logs
	apiCall := func(method, path, body string) (int, []byte) { return api.call(t, method, path, "", body) }
	// At start the api process syncs every table that has no Parquet yet: one run of all 50.
	var started struct {
		RunID   string `json:"run_id"`
		Trigger string `json:"trigger"`
	}
	for deadline := time.Now().Add(15 * time.Second); started.RunID == ""; {
		code, body := apiCall("GET", "/api/runs", "")
		var list []json.RawMessage
		if json.Unmarshal(body, &list); code == http.StatusOK && len(list) == 1 {
			json.Unmarshal(list[0], &started)
		} else if time.Now().After(deadline) {
			t.Fatalf("GET /api/runs: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if started.Trigger != pipeline.TriggerStartup {
		t.Fatalf("the run was started by %q", started.Trigger)
	}

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := nc.JetStream()
	deadline := time.Now().Add(20 * time.Second)
	for len(publishedCounts(t, js)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing published:\n%s", logs[0].String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// pipeline.concurrency is each sync stage's limit of unacked messages across the workers.
	for name := range js.ConsumerNames("ANALYST") {
		info, err := js.ConsumerInfo("ANALYST", name)
		if err != nil {
			t.Fatal(err)
		}
		for _, stage := range []string{"ingest-", "transform-", "profile-", "publish-"} {
			if strings.HasPrefix(name, stage) && info.Config.MaxAckPending != 6 {
				t.Errorf("consumer %s: MaxAckPending %d, want pipeline.concurrency 6", name, info.Config.MaxAckPending)
			}
		}
	}
	workers[0].Process.Kill() // mid-way: it holds unacknowledged messages
	workers[0].Wait()
	workers = workers[1:]

	var counts map[string]int
	for {
		counts = publishedCounts(t, js)
		if len(counts) == tables {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tables published after the kill:\n%s", len(counts), tables, logs[1].String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(4 * time.Second) // past the ack wait: any redelivery would have published again
	counts = publishedCounts(t, js)
	for _, n := range names {
		if counts[n] != 1 {
			t.Errorf("table %s published %d times", n, counts[n])
		}
	}
	if n := parquetRows(t, filepath.Join(home, "data/parquet/scale/*.parquet")); n != tables*rows {
		t.Fatalf("%d rows in the Parquet files, want %d", n, tables*rows)
	}
	var run store.Run
	// The api process follows the workers through its own consumers; under a loaded CI machine
	// their fsyncs queue behind everyone else's, so it may lag the workers by many seconds.
	for deadline := time.Now().Add(90 * time.Second); ; {
		_, body := apiCall("GET", "/api/runs/"+started.RunID, "")
		json.Unmarshal(body, &run)
		if run.Status == store.RunSucceeded || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if run.Status != store.RunSucceeded || len(run.Tables) != tables {
		var stuck []string
		for _, rt := range run.Tables {
			if rt.Status != store.RunSucceeded {
				var stages []string
				for _, st := range rt.Stages {
					stages = append(stages, fmt.Sprintf("%s(done=%v %s)", st.Name, st.Done, st.Error))
				}
				stuck = append(stuck, rt.Name+" "+rt.Status+": "+strings.Join(stages, ", "))
			}
		}
		t.Fatalf("the api process shows the run %s with %d tables; not succeeded:\n%s\n%s", run.Status, len(run.Tables), strings.Join(stuck, "\n"), apiLog.String())
	}
	for _, rt := range run.Tables {
		if rt.Rows != rows {
			t.Errorf("run table %s: %d rows, want %d", rt.Name, rt.Rows, rows)
		}
	}
	worked := 0
	for _, l := range logs[1:] {
		if strings.Contains(l.String(), "manifest updated") {
			worked++
		}
	}
	if worked < 2 {
		t.Errorf("the surviving workers did not both take work")
	}
}

// Two workers publishing the same stage output (a stage redone after a crash) put it in the
// stream once; triggers and failure records are never deduplicated.
func TestOncePublisherAcrossWorkers(t *testing.T) {
	ns := startNATS(t)
	var pubs []*sharedBackend
	for range 2 {
		b, err := newSharedBackend(ns.ClientURL(), time.Minute, slogDiscard())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		pubs = append(pubs, b)
	}
	for _, b := range pubs {
		for range 2 {
			ev := pipeline.TablePublished{Rows: 3}
			pipeline.Stamp(&ev.Header, "run1", "orders")
			if err := pipeline.Publish(b.Publisher(), ev); err != nil {
				t.Fatal(err)
			}
			req := pipeline.SyncRequested{Trigger: pipeline.TriggerManual}
			pipeline.Stamp(&req.Header, "run1", "orders")
			if err := pipeline.Publish(b.Publisher(), req); err != nil {
				t.Fatal(err)
			}
		}
	}
	other := pipeline.TablePublished{}
	pipeline.Stamp(&other.Header, "run2", "orders")
	pipeline.Publish(pubs[1].Publisher(), other)

	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := nc.JetStream()
	if c := publishedCounts(t, js); c["orders"] != 2 {
		t.Fatalf("table.published for orders: %d, want one per run (2)", c["orders"])
	}
	info, _ := js.StreamInfo("ANALYST", &nats.StreamInfoRequest{SubjectsFilter: pipeline.TopicSyncRequested})
	if info.State.Subjects[pipeline.TopicSyncRequested] != 4 {
		t.Fatalf("sync.requested must never be deduplicated: %v", info.State.Subjects)
	}
}

// In a scale-out the Jira stages run in the api process, where the webhooks arrive: a signed
// webhook gets its 202 there, the issue reaches Parquet, and a worker profiles and publishes the
// Jira table announced over NATS.
func TestJiraRunsInTheAPIProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a worker and an api process")
	}
	ns := startNATS(t)
	fake := jiratest.New()
	defer fake.Close()
	home := jiraHome(t, fake)
	f, _ := os.OpenFile(filepath.Join(home, "config/instance.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "pipeline: {backend: nats, nats_url: %q}\n", ns.ClientURL())
	f.Close()
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "# T\n\n```yaml\ntables:\n"+
		"  - {id: shop.orders, name: orders, folder: shop, primary_key: id, sync_strategy: full_refresh, csv: {path: orders.csv}}\n"+
		"  - {id: jira.issues, name: jira_issues, folder: jira, primary_key: issue_key, sync_strategy: full_refresh, source: jira}\n```\n")
	testenv.WriteFile(t, filepath.Join(home, "source/orders.csv"), "id,total\n1,5\n")

	worker := exec.Command(binary, "--home", home, "worker", "--id", "w0")
	workerLog := &testenv.SyncBuffer{}
	worker.Stderr = workerLog
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { worker.Process.Signal(syscall.SIGTERM); worker.Wait() }()
	api := startServer(t, home, "jira-api-test-admin-token-0001", "--role", "api")

	post := func(secret string, body []byte) int {
		req, _ := http.NewRequest("POST", api.URL+"/webhooks/jira", bytes.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", jiratest.Sign(secret, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, key := range []string{"SUP-1", "SUP-2", "SUP-3", "SUP-4"} {
		if code := post("s", jiratest.Webhook("jira:issue_created", fake.Issue(key), nil)); code != http.StatusAccepted {
			t.Fatalf("webhook for %s: %d, want 202", key, code)
		}
	}
	fake.Update("SUP-2", func(is map[string]any) { is["fields"].(map[string]any)["summary"] = "Edited on the api process" })
	if code := post("s", jiratest.Webhook("jira:issue_updated", fake.Issue("SUP-2"), nil)); code != http.StatusAccepted {
		t.Fatalf("update webhook: %d", code)
	}
	if code := post("wrong", jiratest.Webhook("jira:issue_updated", fake.Issue("SUP-2"), nil)); code != http.StatusUnauthorized {
		t.Fatalf("a webhook with a bad signature: %d, want 401", code)
	}

	summary := func() string {
		db, _ := sql.Open("duckdb", "")
		defer db.Close()
		var s sql.NullString
		db.QueryRow("SELECT summary FROM read_parquet('" + filepath.Join(home, "data/parquet/jira/issues/*.parquet") + "') WHERE issue_key = 'SUP-2'").Scan(&s)
		return s.String
	}
	for deadline := time.Now().Add(30 * time.Second); jiraKeys(home) != "SUP-1,SUP-2,SUP-3,SUP-4" || summary() != "Edited on the api process"; {
		if time.Now().After(deadline) {
			t.Fatalf("Jira Parquet holds %q (SUP-2: %q):\n%s", jiraKeys(home), summary(), api.Logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The worker, not the api process, profiles and publishes the table the api process wrote.
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, _ := os.ReadFile(filepath.Join(home, "data/metadata/profiles.json"))
		if strings.Contains(string(b), `"jira_issues"`) && strings.Contains(workerLog.String(), "manifest updated") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jira_issues was not profiled and published by the worker:\n%s", workerLog.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The api process's /health reads the pipeline from JetStream, where the workers' work waits:
// with no worker running, the start-up sync's two triggers wait for the ingest stage; once a
// worker has run them, nothing waits and the table whose file is missing is a failed message
// the api can retry.
func TestAPIHealthReadsTheStream(t *testing.T) {
	ns := startNATS(t)
	home := t.TempDir()
	testenv.WriteFile(t, filepath.Join(home, "config/instance.yaml"), fmt.Sprintf(
		"instance: {name: Lag}\ndata_source: {type: csv, csv: {path: source}}\npipeline: {backend: nats, nats_url: %q}\n", ns.ClientURL()))
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "```yaml\ntables:\n"+
		"  - {id: a, name: a, folder: f, description: A, primary_key: id, sync_strategy: full_refresh}\n"+
		"  - {id: b, name: b, folder: f, description: B, primary_key: id, sync_strategy: full_refresh}\n```\n")
	testenv.WriteFile(t, filepath.Join(home, "source/a.csv"), "id\n1\n")
	api := startServer(t, home, "lag-test-admin-token-000000001", "--role", "api")
	waitHealth := func(what string, ok func(ingestLag, poison int) bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			var health struct {
				Pipeline struct {
					Handlers []struct {
						Handler string
						Lag     int
					}
					Poison int `json:"poison_pending"`
				}
			}
			_, body := api.call(t, "GET", "/health", "", "")
			json.Unmarshal(body, &health)
			for _, h := range health.Pipeline.Handlers {
				if h.Handler == "ingest" && ok(h.Lag, health.Pipeline.Poison) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("/health does not show %s: %s", what, body)
			}
		}
	}
	waitHealth("the 2 sync triggers waiting for ingest", func(lag, _ int) bool { return lag == 2 })

	worker := exec.Command(binary, "--home", home, "worker", "--id", "w0")
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { worker.Process.Signal(syscall.SIGTERM); worker.Wait() }()
	waitHealth("no lag and b's failed message", func(lag, poison int) bool { return lag == 0 && poison == 1 })
}

// startNATS runs a JetStream server on 127.0.0.1 for the test.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := natsembed.Start(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
