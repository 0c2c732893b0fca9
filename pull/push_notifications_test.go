package pull_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/notify"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/pull"
	"github.com/ai-data-analyst/analyst/store"
)

// TestPushNotificationScripts: `analyst push` mirrors user/notifications/ to the real portal:
// scripts are uploaded, a refused one is a warning, and one removed locally goes on the server.
func TestPushNotificationScripts(t *testing.T) {
	cfg := testenv.Instance(t, map[string]string{
		"config/instance.yaml":     "instance: {name: Push test}\ndata_source: {type: csv, csv: {path: src}}\n",
		"docs/data_description.md": "```yaml\ntables:\n  - {id: orders, name: orders, folder: sales, description: O, primary_key: id, sync_strategy: full_refresh}\n```\n",
	})
	db := testenv.OpenStore(t, cfg.Paths.Store)
	users, _ := store.NewUsers(db)
	runs, _ := store.NewRuns(db)
	users.Add("ann@example.com", store.RoleAnalyst)
	token, _, _ := users.CreateToken("ann@example.com", "t")
	policy := &access.Policy{Config: cfg, Users: users}
	svc, err := notify.New(notify.Options{Config: cfg, DB: db, Users: users, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(portal.New(portal.Deps{Config: cfg, Runs: runs, Users: users, Policy: policy, Notify: svc}))
	t.Cleanup(srv.Close)

	ws := t.TempDir()
	dir := filepath.Join(ws, "user", "notifications")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "revenue.sh"), []byte("# depends: orders\necho '{\"notify\": false}'\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "old.sh"), []byte("echo '{\"notify\": false}'\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.sh"), []byte("# schedule: every 5s\n"), 0o644)
	push := func() *pull.PushResult {
		res, err := pull.Push(context.Background(), pull.Options{Server: srv.URL, Token: token, Dir: ws, Attempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := push()
	if res.Scripts != 2 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "bad.sh") {
		t.Fatalf("first push: %+v", res)
	}
	os.Remove(filepath.Join(dir, "old.sh"))
	if res := push(); res.Scripts != 1 || res.ScriptsDeleted != 1 {
		t.Fatalf("second push: %+v", res)
	}
	list, _, _ := svc.Scripts.List("ann@example.com")
	if len(list) != 1 || list[0].Name != "revenue.sh" || !list[0].DependsOn("orders") {
		t.Fatalf("server holds %+v", list)
	}
}
