package handlers_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
)

// The Jira crash test runs the server (pipeline + webhook route) as a child process of its own
// test binary, fires signed webhooks at it while killing it with SIGKILL and starting it again,
// and checks that every change Jira confirmed with a 202 ends up in Parquet. Jira (the fake)
// lives in the parent, so it survives the kills; like Jira, the sender retries a webhook that
// got no 202.
const (
	envJiraChild = "ANALYST_JIRA_CHILD" // the instance folder: run as the server child
	envJiraBurst = "ANALYST_JIRA_BURST" // webhooks in the burst (default 2,000, as the issue asks)
)

func TestJiraCrashDurability(t *testing.T) {
	if home := os.Getenv(envJiraChild); home != "" {
		jiraChild(t, home)
		return
	}
	if testing.Short() {
		t.Skip("runs and kills child processes")
	}
	burst := 2000
	if s := os.Getenv(envJiraBurst); s != "" {
		fmt.Sscan(s, &burst)
	}
	fake := jiratest.New()
	defer fake.Close()
	home := t.TempDir()
	cfg := jiraInstance(t, home, fake.URL)
	const issues = 50
	var all []map[string]any
	for i := range issues {
		month := 1 + i%3 // three months, so several partitions are written at once
		is := fake.NewIssue(fmt.Sprintf("SUP-%d", i+1), 30000+i, fmt.Sprintf("2025-%02d-10T10:00:00.000+0000", month), jiratest.Shape{Comments: 2, Histories: 2})
		fake.Put(is)
		all = append(all, is)
	}

	var (
		mu       sync.Mutex
		child    *exec.Cmd
		url      string
		accepted atomic.Int64
		kills    int
	)
	start := func() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestJiraCrashDurability$")
		cmd.Env = append(os.Environ(), envJiraChild+"="+home)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				mu.Lock()
				child, url = cmd, u
				mu.Unlock()
				go func() {
					for sc.Scan() {
					}
				}()
				return
			}
		}
		t.Fatalf("child did not start: %v", cmd.Wait())
	}
	start()
	defer func() {
		mu.Lock()
		child.Process.Kill()
		child.Wait()
		mu.Unlock()
	}()

	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	killAt := map[int64]bool{int64(burst / 3): true, int64(2 * burst / 3): true}
	var wg sync.WaitGroup
	var seq atomic.Int64
	versions := make([]sync.Mutex, issues) // one change of an issue at a time, like Jira's order
	for w := range 8 {
		seed := rng.Uint64() // drawn here: rng is not safe for the workers to share
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), seed))
			for {
				n := seq.Add(1)
				if n > int64(burst) {
					return
				}
				i := r.IntN(issues)
				key := all[i]["key"].(string)
				versions[i].Lock()
				fake.Update(key, func(is map[string]any) { is["fields"].(map[string]any)["summary"] = fmt.Sprintf("v%d", n) })
				body := jiratest.Webhook("jira:issue_updated", all[i], nil)
				for attempt := 0; ; attempt++ {
					mu.Lock()
					u := url
					mu.Unlock()
					req, _ := http.NewRequest(http.MethodPost, u+"/webhooks/jira", strings.NewReader(string(body)))
					req.Header.Set("X-Hub-Signature-256", jiratest.Sign(jiraSecret, body))
					resp, err := http.DefaultClient.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusAccepted {
							break
						}
					}
					if attempt > 500 {
						t.Errorf("webhook %d never accepted: %v", n, err)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				versions[i].Unlock()
				if accepted.Add(1); killAt[n] {
					mu.Lock()
					child.Process.Kill() // SIGKILL: no shutdown of any kind
					child.Wait()
					kills++
					mu.Unlock()
					start()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d webhooks accepted, %d kills", accepted.Load(), kills)

	// Every issue shows its latest summary in Parquet.
	want := map[string]string{}
	for _, is := range all {
		k := is["key"].(string)
		if v := fake.Issue(k)["fields"].(map[string]any)["summary"].(string); strings.HasPrefix(v, "v") {
			want[k] = v // changed and confirmed with a 202
		}
	}
	s := &jiraServer{cfg: cfg}
	var got map[string]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = map[string]string{}
		for _, row := range s.rows(t, "issues", "issue_key || '=' || summary", "true") {
			k, v, _ := strings.Cut(row, "=")
			got[k] = v
		}
		if fmt.Sprint(got) == fmt.Sprint(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: Parquet has %q, Jira has %q", k, got[k], v)
			}
		}
	}
	if n := s.rows(t, "issues", "count(*)", "true"); strings.Join(n, "") != fmt.Sprint(len(want)) {
		t.Errorf("issue rows = %v, want %d (no duplicates)", n, len(want))
	}
	s.waitRows(t, "comments", "count(*)", "true", fmt.Sprint(2*len(want)))
	// A temp file is visible only while a rewrite runs; the ones a kill left are removed at start.
	waitUntil(t, "no temp files", 10*time.Second, func() bool {
		leftovers, _ := filepath.Glob(filepath.Join(cfg.Paths.Parquet, "jira", "*", ".*tmp*"))
		return len(leftovers) == 0
	})
}

// jiraChild runs the server until it is killed.
func jiraChild(t *testing.T, home string) {
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := startJira(t, cfg, jira.NewClient(cfg.Instance.Jira, nil))
	fmt.Printf("listening %s\n", s.http.URL)
	select {}
}
