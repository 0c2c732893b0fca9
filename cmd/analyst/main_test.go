package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/store"
)

var binary string

// TestMain builds the analyst binary once; the tests run it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "analyst-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "analyst")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func analyst(t *testing.T, home string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--home", home}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("analyst %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// csvInstance is a two-table CSV instance; the second table's file is missing.
func csvInstance(t *testing.T) string {
	home := t.TempDir()
	testenv.WriteFile(t, filepath.Join(home, "config/instance.yaml"), "instance: {name: CLI test}\ndata_source:\n  type: csv\n  csv: {path: source}\n")
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "```yaml\ntables:\n"+
		"  - {id: s.items, name: items, folder: s, description: Items, primary_key: id, sync_strategy: full_refresh, csv: {path: items.csv},\n"+
		"     columns: [{name: price, type: \"DECIMAL(6,2)\"}]}\n"+
		"  - {id: s.late, name: late, folder: s, description: Late, primary_key: id, sync_strategy: full_refresh, csv: {path: late.csv}}\n```\n")
	testenv.WriteFile(t, filepath.Join(home, "source/items.csv"), "id,name,price\n1,apple,1.20\n2,pear,0.90\n3,plum,n/a\n")
	return home
}

func TestSyncReplayAndEvents(t *testing.T) {
	home := csvInstance(t)

	out, stderr, code := analyst(t, home, "sync")
	if code != 1 {
		t.Fatalf("sync with a failing table must exit 1, got %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "items") || !strings.Contains(out, "succeeded") || !strings.Contains(out, "failed") {
		t.Fatalf("results table missing:\n%s", out)
	}
	if !strings.Contains(stderr, "1 of 2 tables failed") {
		t.Fatalf("stderr: %s", stderr)
	}
	if !strings.Contains(out, `warning: items.price: 1 value(s)`) || !strings.Contains(out, `row 3: "n/a"`) {
		t.Fatalf("the invalid price must be reported with its row:\n%s", out)
	}

	out, _, code = analyst(t, home, "replay", "--list", "--json")
	if code != 0 {
		t.Fatalf("replay --list exit %d", code)
	}
	var p struct {
		Topic, Handler, Table, RunID string
		Attempts                     int
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &p); err != nil {
		t.Fatalf("replay --list --json: %v\n%s", err, out)
	}
	if p.Topic != "sync.requested" || p.Handler != "ingest" || p.Table != "late" || p.Attempts < 1 {
		t.Fatalf("poison entry: %+v", p)
	}

	testenv.WriteFile(t, filepath.Join(home, "source/late.csv"), "id\n7\n")
	out, stderr, code = analyst(t, home, "replay", "--failed")
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("replay: exit %d\n%s%s", code, out, stderr)
	}
	_, stderr, _ = analyst(t, home, "replay", "--failed")
	if !strings.Contains(stderr, "nothing to replay") {
		t.Fatalf("a replayed message must not be replayed again: %s", stderr)
	}

	out, _, code = analyst(t, home, "events", "--json")
	if code != 0 {
		t.Fatalf("events exit %d", code)
	}
	topics := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev struct {
			Topic, RunID, Table string `json:"-"`
		}
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("events line is not JSON: %s", sc.Text())
		}
		for _, key := range []string{"topic", "time", "run_id", "table"} {
			if _, ok := raw[key]; !ok {
				t.Fatalf("event without %s: %s", key, sc.Text())
			}
		}
		_ = ev
		topics[raw["topic"].(string)]++
	}
	for _, topic := range []string{"sync.requested", "table.extracted", "table.converted", "table.published", "notify.delivered", "sync.requested.failed"} {
		if topics[topic] == 0 {
			t.Errorf("no %s event in the log: %v", topic, topics)
		}
	}
	if topics["notify.delivered"] != 2 {
		t.Errorf("each table delivered once: %v", topics)
	}
}

func TestSecondProcessFailsFast(t *testing.T) {
	home := csvInstance(t)
	serve := exec.Command(binary, "--home", home, "serve", "--addr", "127.0.0.1:0")
	logs := &testenv.SyncBuffer{}
	serve.Stderr = logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "serving") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	_, stderr, code := analyst(t, home, "sync")
	took := time.Since(start)
	if code == 0 || !strings.Contains(stderr, fmt.Sprintf("in use by PID %d", serve.Process.Pid)) || !strings.Contains(stderr, "use --server or stop it") {
		t.Fatalf("second process: exit %d, %q", code, stderr)
	}
	if took > 3*time.Second {
		t.Fatalf("second process took %v to fail", took)
	}
}

// An offline `analyst sync` runs the alert scripts that depend on the synced tables, as serve
// would, before it exits.
func TestSyncRunsAlertScripts(t *testing.T) {
	home := csvInstance(t)
	if _, errOut, code := analyst(t, home, "users", "add", "ann@example.com"); code != 0 {
		t.Fatalf("users add: %s", errOut)
	}
	testenv.WriteFile(t, filepath.Join(home, "data/notifications/scripts/ann@example.com/items_alert.sh"),
		"# depends: items\necho \"{\\\"notify\\\": true, \\\"title\\\": \\\"items synced\\\", \\\"message\\\": \\\"$ANALYST_TABLE via $ANALYST_TRIGGER\\\"}\"\n")
	if out, errOut, code := analyst(t, home, "sync", "items"); code != 0 {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	db := testenv.OpenStore(t, filepath.Join(home, "data/analyst.db"))
	notes, err := store.NewNotifications(db)
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := notes.Inbox("ann@example.com", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(inbox) != 1 || inbox[0].Title != "items synced" || inbox[0].Message != "items via table" {
		t.Fatalf("inbox after an offline sync: %+v", inbox)
	}
}
