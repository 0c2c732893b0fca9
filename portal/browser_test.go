package portal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	_ "github.com/ai-data-analyst/analyst/connectors/csv"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// chromium finds Debian's Chromium. Without it the browser tests skip on a developer's machine
// and fail in CI (CI set), where .ci/run installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install -y chromium); CI must run the browser tests")
	}
	t.Skip("chromium is not installed; the browser tests need it (apt-get install -y chromium)")
	return ""
}

// realPipeline runs the five pipeline stages on the fixture's store.
func realPipeline(t *testing.T) func(*config.Config, *bolt.DB, *store.Runs) (func([]string, string, string) (string, error), *pipeline.Replayer, *pipeline.BoltPubSub) {
	return func(cfg *config.Config, db *bolt.DB, runs *store.Runs) (func([]string, string, string) (string, error), *pipeline.Replayer, *pipeline.BoltPubSub) {
		log, err := pipeline.NewBoltPubSub(db, nil)
		if err != nil {
			t.Fatal(err)
		}
		env := handlers.NewEnv(cfg, runs, nil)
		r, err := pipeline.NewRouter(log, pipeline.RouterConfig{MaxRetries: 1, InitialInterval: 10 * time.Millisecond, OnStage: env.TrackStage})
		if err != nil {
			t.Fatal(err)
		}
		handlers.Register(r, env)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); r.Run(ctx) }()
		<-r.Running()
		t.Cleanup(func() { cancel(); r.Close(); <-done; env.Close(); log.Close() })
		sync := func(tables []string, trigger, by string) (string, error) {
			return handlers.RequestSync(r.Publisher(), runs, tables, trigger, by, false)
		}
		return sync, pipeline.NewReplayer(log), log
	}
}

func waitRun(t *testing.T, runs *store.Runs, id string) *store.Run {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if run, err := runs.Get(id); err == nil && (run.Status == store.RunSucceeded || run.Status == store.RunFailed) {
			return run
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("run %s did not finish", id)
	return nil
}

// TestBrowser drives headless Chromium through the portal: Google sign-in, the dashboard with
// synced data, a table's profile, Retry of a failed run until it succeeds, and a dataset
// switch. Screenshots are kept as test artifacts.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	home := t.TempDir()
	writeFile(t, home, "docs/data_description.md", "```yaml\ntables:\n"+
		"  - {id: shop.orders, name: orders, folder: sales, description: Orders of the shop, primary_key: id, sync_strategy: full_refresh, csv: {path: orders.csv}}\n"+
		"  - {id: shop.refunds, name: refunds, folder: sales, description: Refunds; the file comes late, primary_key: id, sync_strategy: full_refresh, csv: {path: refunds.csv}}\n```\n")
	writeFile(t, home, "source/orders.csv", "id,amount,placed,channel\n1,10.50,2024-01-02,web\n2,20.25,2024-01-03,shop\n3,,2024-02-01,web\n")
	f := newWebFixture(t, webOptions{home: home, pipeline: realPipeline(t)})

	// A first sync fails for refunds (no file yet).
	req, _ := http.NewRequest("POST", f.url+"/api/sync", strings.NewReader(`{"tables":[]}`))
	req.Header.Set("Authorization", "Bearer "+f.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var started struct {
		RunID string `json:"run_id"`
	}
	json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	runID := started.RunID
	if run := waitRun(t, f.runs, runID); run.Status != store.RunFailed {
		t.Fatalf("the first run must fail (refunds has no file): %s", run.Status)
	}

	artifacts := os.Getenv("ANALYST_TEST_ARTIFACTS")
	if artifacts == "" {
		var err error
		if artifacts, err = os.MkdirTemp("", "portal-browser-"); err != nil {
			t.Fatal(err)
		}
	}
	opts := append([]chromedp.ExecAllocatorOption{},
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			p := filepath.Join(artifacts, name+".png")
			t.Logf("screenshot %s", p)
			return os.WriteFile(p, png, 0o644)
		})
	}
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	// Sign in with "Google".
	f.oidc.QueueUser(&mockoidc.MockUser{Subject: "42", Email: "boss@example.com", EmailVerified: true})
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#google")),
		shot("1-login"),
		chromedp.Click(chromedp.CSS("#google")),
		chromedp.WaitVisible(chromedp.CSS("#user-email")),
		chromedp.WaitVisible(chromedp.CSS("#tables")),
		shot("2-dashboard"),
	); err != nil {
		t.Fatal(err)
	}
	if got := text("#user-email"); got != "boss@example.com" {
		t.Fatalf("signed in as %q", got)
	}
	if row := text(`#tables tr[data-table="orders"]`); !strings.Contains(row, "3") || !strings.Contains(row, "ok") {
		t.Fatalf("the dashboard must show orders with its 3 rows: %q", row)
	}
	if failed := text("#failed-runs"); !strings.Contains(failed, runID) || !strings.Contains(failed, "refunds") {
		t.Fatalf("the failed run must be listed with its error: %q", failed)
	}

	// The table's profile.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#tables a[href="/catalog/orders"]`)),
		chromedp.WaitVisible(chromedp.CSS("#columns")),
		shot("3-profile"),
	); err != nil {
		t.Fatal(err)
	}
	if cols := text("#columns"); !strings.Contains(cols, "amount") || !strings.Contains(cols, "channel") {
		t.Fatalf("profile columns: %q", cols)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#columns svg rect").length`))
	if err != nil || bars == 0 {
		t.Fatalf("column charts: %d bars, %v", bars, err)
	}

	// The file arrives; Retry replays the failed step and the run succeeds, live.
	writeFile(t, home, "source/refunds.csv", "id,order_id,amount\n1,2,5.00\n")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#failed-runs button.retry")),
		chromedp.Click(chromedp.CSS("#failed-runs button.retry")),
		chromedp.WaitVisible(chromedp.CSS("#run-status")),
	); err != nil {
		t.Fatal(err)
	}
	// A live run page reloads itself once the run is over: wait for the page that shows the
	// success and is no longer live, or the next navigation races that reload.
	settled := func() bool {
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" &&
			!document.querySelector("[data-run-live]") &&
			(document.getElementById("run-status")?.textContent || "").trim() === "`+store.RunSucceeded+`"`))
		return err == nil && done
	}
	deadline := time.Now().Add(60 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			chromedp.Do(ctx, shot("4-retry-timeout"))
			t.Fatalf("the retried run did not succeed: %s", text("#run-status"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`.run-table[data-table="refunds"] .st-done`)), shot("4-retried"))
	if st := text(`.run-table[data-table="refunds"] [data-field="status"]`); st != store.RunSucceeded {
		t.Fatalf("refunds after retry: %s", st)
	}

	// Switch a dataset on.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.url+"/catalog"),
		chromedp.WaitVisible(chromedp.CSS("#ds-marketing")),
		chromedp.Click(chromedp.CSS("#ds-marketing")),
		chromedp.WaitVisible(chromedp.CSS(`#ds-marketing.on`)),
		shot("5-dataset-on"),
	); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.users.Get("boss@example.com"); !u.Datasets["marketing"] {
		t.Fatal("the switch must be saved")
	}
	fmt.Fprintln(os.Stderr, "browser screenshots in", artifacts)
}
