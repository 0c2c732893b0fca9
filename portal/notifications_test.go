package portal_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/notify"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/store"
)

// notifyFixture is the portal fixture with notifications on.
func notifyFixture(t *testing.T) (*fixture, *notify.Service) {
	t.Helper()
	f := newFixture(t)
	f.srv.Close()
	db, err := store.OpenDB(filepath.Join(t.TempDir(), "n.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.CloseDB(db) })
	svc, err := notify.New(notify.Options{Config: f.cfg, DB: db, Users: f.users, Policy: &access.Policy{Config: f.cfg, Users: f.users}})
	if err != nil {
		t.Fatal(err)
	}
	svc.Desktop = &notify.Desktop{Secret: []byte("portal-test-secret"), Service: svc, Logger: slog.Default()}
	log, _ := pipeline.NewBoltPubSub(db, nil)
	t.Cleanup(func() { log.Close() })
	r, _ := pipeline.NewRouter(log, pipeline.RouterConfig{})
	svc.Register(r) // requests land in the log; nothing consumes them here
	f.srv.Config.Handler = portal.New(portal.Deps{Config: f.cfg, Runs: f.runs, Users: f.users,
		Policy: &access.Policy{Config: f.cfg, Users: f.users}, Notify: svc})
	f.srv = newNotifyServer(t, f.srv.Config.Handler)
	return f, svc
}

func TestNotificationScriptsAPI(t *testing.T) {
	f, _ := notifyFixture(t)
	put := func(name, body string) (int, []byte) {
		return testenv.Call(t, http.MethodPut, f.srv.URL+"/api/notifications/scripts/"+name, f.analyst, strings.NewReader(body))
	}
	if code, body := put("revenue.sh", "# depends: orders\n# schedule: every 15m\necho '{\"notify\": false}'\n"); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	if code, _ := put(".hidden", "x"); code != 400 {
		t.Fatalf("dot name: %d", code)
	}
	if code, body := put("bad.sh", "# schedule: every 10s\n"); code != 400 || !strings.Contains(string(body), "at least 1m") {
		t.Fatalf("bad schedule: %d %s", code, body)
	}
	code, body := f.do(t, "GET", "/api/notifications/scripts", f.analyst, nil)
	var list []map[string]any
	json.Unmarshal(body, &list)
	if code != 200 || len(list) != 1 || list[0]["name"] != "revenue.sh" || list[0]["effective_schedule"] != "every 15m" {
		t.Fatalf("list: %d %s", code, body)
	}
	// Another user sees none of ann's scripts and cannot run them.
	if _, body := f.do(t, "GET", "/api/notifications/scripts", f.privileged, nil); string(body) != "[]\n" {
		t.Fatalf("pat sees %s", body)
	}
	if code, _ := f.do(t, "POST", "/api/notifications/scripts/revenue.sh/run", f.privileged, nil); code != 404 {
		t.Fatalf("pat runs ann's script: %d", code)
	}
	if code, body := f.do(t, "POST", "/api/notifications/scripts/revenue.sh/run", f.analyst, nil); code != 202 || !strings.Contains(string(body), "request_id") {
		t.Fatalf("run: %d %s", code, body)
	}
	if code, _ := f.do(t, "POST", "/api/notifications/scripts/revenue.sh/settings", f.analyst, map[string]any{"schedule": "every 5s"}); code != 400 {
		t.Fatalf("bad schedule accepted: %d", code)
	}
	code, body = f.do(t, "POST", "/api/notifications/scripts/revenue.sh/settings", f.analyst, map[string]any{"muted": true, "schedule": "0 7 * * *"})
	if code != 200 || !strings.Contains(string(body), `"muted":true`) || !strings.Contains(string(body), `"schedule":"0 7 * * *"`) {
		t.Fatalf("settings: %d %s", code, body)
	}
	if code, _ := f.do(t, "DELETE", "/api/notifications/scripts/revenue.sh", f.analyst, nil); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := f.do(t, "GET", "/api/notifications/scripts", "", nil); code != 401 {
		t.Fatalf("anonymous list: %d", code)
	}
}

func TestTelegramLinkAPI(t *testing.T) {
	f, svc := notifyFixture(t)
	code, _ := svc.State.NewTelegramCode(99, time.Now())
	if c, body := f.do(t, "POST", "/api/telegram/verify", f.analyst, map[string]string{"code": "12345x"}); c != 400 || !strings.Contains(string(body), "Invalid or expired") {
		t.Fatalf("wrong code: %d %s", c, body)
	}
	if c, body := f.do(t, "POST", "/api/telegram/verify", f.analyst, map[string]string{"code": code}); c != 200 {
		t.Fatalf("verify: %d %s", c, body)
	}
	if _, body := f.do(t, "GET", "/api/telegram/status", f.analyst, nil); !strings.Contains(string(body), `"linked":true`) {
		t.Fatalf("status: %s", body)
	}
	if c, _ := f.do(t, "POST", "/api/telegram/unlink", f.analyst, nil); c != 200 {
		t.Fatalf("unlink: %d", c)
	}
	if c, body := f.do(t, "POST", "/api/telegram/unlink", f.analyst, nil); c != 400 || !strings.Contains(string(body), "not linked") {
		t.Fatalf("second unlink: %d %s", c, body)
	}
}

func TestInboxAndImagesOnlyForTheirOwner(t *testing.T) {
	f, svc := notifyFixture(t)
	os.MkdirAll(svc.ImageDir, 0o755)
	os.WriteFile(filepath.Join(svc.ImageDir, "n1.png"), []byte("\x89PNG\r\n\x1a\nrest"), 0o600)
	svc.State.AddNotification(store.Notification{ID: "n1", User: "ann@example.com", Script: "a.sh", Title: "Drop", Image: "n1.png", Time: time.Now()})

	_, body := f.do(t, "GET", "/api/notifications", f.analyst, nil)
	if !strings.Contains(string(body), `"image_url":"/api/notifications/images/n1"`) {
		t.Fatalf("ann's inbox: %s", body)
	}
	if _, body := f.do(t, "GET", "/api/notifications", f.privileged, nil); string(body) != "[]\n" {
		t.Fatalf("pat's inbox: %s", body)
	}
	if c, _ := f.do(t, "GET", "/api/notifications/images/n1", f.analyst, nil); c != 200 {
		t.Fatalf("owner: %d", c)
	}
	for name, tok := range map[string]string{"admin": f.admin, "other analyst": f.privileged, "anonymous": ""} {
		if c, _ := f.do(t, "GET", "/api/notifications/images/n1", tok, nil); c != 404 {
			t.Fatalf("%s got the image: %d", name, c)
		}
	}
	// The desktop app's signed URL works without a session, until it expires or is altered.
	q := svc.Desktop.SignImage("n1", time.Now().Add(time.Hour))
	if c, _ := f.do(t, "GET", "/api/notifications/images/n1?"+q, "", nil); c != 200 {
		t.Fatalf("signed: %d", c)
	}
	if c, _ := f.do(t, "GET", "/api/notifications/images/n1?"+strings.Replace(q, "sig=", "sig=0", 1), "", nil); c != 404 {
		t.Fatalf("altered signature: %d", c)
	}
	if c, _ := f.do(t, "GET", "/api/notifications/images/n1?"+svc.Desktop.SignImage("n1", time.Now().Add(-time.Second)), "", nil); c != 404 {
		t.Fatalf("expired signature: %d", c)
	}
}

func TestDesktopLinkAPIAndWebSocket(t *testing.T) {
	f, _ := notifyFixture(t)
	_, body := f.do(t, "POST", "/api/desktop/authorize", f.analyst, nil)
	var auth struct{ URL string }
	json.Unmarshal(body, &auth)
	u, err := url.Parse(auth.URL)
	if err != nil || u.Scheme != "data-analyst" {
		t.Fatalf("authorize: %s", body)
	}
	tok := u.Query().Get("token")
	c, body := f.do(t, "POST", "/api/desktop/refresh", "", map[string]string{"token": tok})
	if c != 200 || !strings.Contains(string(body), `"token"`) {
		t.Fatalf("refresh: %d %s", c, body)
	}

	// The WebSocket works through the portal's middleware.
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(f.srv.URL, "http")+"/ws/notifications", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"auth","token":"`+tok+`"}`))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, msg, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"auth_ok"`) {
		t.Fatalf("ws: %s %v", msg, err)
	}

	if c, _ := f.do(t, "POST", "/api/desktop/unlink", f.analyst, nil); c != 200 {
		t.Fatalf("unlink: %d", c)
	}
	if c, _ := f.do(t, "POST", "/api/desktop/refresh", "", map[string]string{"token": tok}); c != 401 {
		t.Fatalf("refresh after unlink: %d", c)
	}
}

func newNotifyServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
