package notify_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ai-data-analyst/analyst/notify"
	"github.com/ai-data-analyst/analyst/store"
)

func newDesktop(t *testing.T, f *fixture) (*notify.Desktop, string) {
	t.Helper()
	d := &notify.Desktop{Secret: []byte("test-secret-0123456789abcdef"), Issuer: "analyst-test", Service: f.svc, Logger: slog.Default(),
		AuthTimeout: 300 * time.Millisecond, PingInterval: time.Hour, MaxConns: 2}
	f.svc.Desktop = d
	srv := httptest.NewServer(http.HandlerFunc(d.ServeWS))
	t.Cleanup(srv.Close)
	return d, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Scheme != "data-analyst" || u.Host != "auth" {
		t.Fatalf("authorize url %q", link)
	}
	return u.Query().Get("token")
}

type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, wsURL string) *wsClient {
	t.Helper()
	ws, _, err := websocket.Dial(context.Background(), wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &wsClient{t, ws}
}

func (c *wsClient) send(v any) {
	b, _ := json.Marshal(v)
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// next reads the next frame, or returns nil when none comes within wait or the socket closed.
func (c *wsClient) next(wait time.Duration) map[string]any {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		return nil
	}
	var m map[string]any
	json.Unmarshal(data, &m)
	return m
}

func (c *wsClient) auth(token string) map[string]any {
	c.send(map[string]string{"type": "auth", "token": token})
	return c.next(2 * time.Second)
}

func TestDesktopAuthentication(t *testing.T) {
	f := newFixture(t)
	d, wsURL := newDesktop(t, f)
	link, err := d.Authorize("ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenOf(t, link)

	if m := dial(t, wsURL).next(2 * time.Second); m["type"] != "auth_error" || m["message"] != "Auth timeout" {
		t.Fatalf("silent client: %v", m)
	}
	c := dial(t, wsURL)
	c.send(map[string]string{"type": "hello"})
	if m := c.next(time.Second); m["message"] != "Expected auth message with token" {
		t.Fatalf("bad first frame: %v", m)
	}
	c = dial(t, wsURL)
	c.ws.Write(context.Background(), websocket.MessageText, []byte("{"))
	if m := c.next(time.Second); m["message"] != "Invalid JSON" {
		t.Fatalf("invalid json: %v", m)
	}

	// Wrong issuer, wrong key, expired, "none" algorithm: all refused.
	sign := func(claims jwt.MapClaims, key string) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
		return s
	}
	link0, _, _ := f.svc.State.DesktopLink("ann@example.com")
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "ann@example.com", "iss": "analyst-test", "lid": link0.ID, "exp": time.Now().Add(time.Hour).Unix()}
	}
	bad := map[string]string{}
	c1 := base()
	c1["iss"] = "someone-else"
	bad["issuer"] = sign(c1, "test-secret-0123456789abcdef")
	bad["key"] = sign(base(), "another-secret")
	c2 := base()
	c2["exp"] = time.Now().Add(-time.Minute).Unix()
	bad["expired"] = sign(c2, "test-secret-0123456789abcdef")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, base()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	bad["none"] = none
	c3 := base()
	delete(c3, "exp")
	bad["no exp"] = sign(c3, "test-secret-0123456789abcdef")
	for name, tk := range bad {
		if m := dial(t, wsURL).auth(tk); m["type"] != "auth_error" || m["message"] != "Invalid token" {
			t.Errorf("%s token: %v", name, m)
		}
	}

	if m := dial(t, wsURL).auth(tok); m["type"] != "auth_ok" || m["username"] != "ann@example.com" {
		t.Fatalf("good token: %v", m)
	}

	// Refresh works up to 7 days past expiry while linked; unlinking revokes every token.
	f.svc.Now = func() time.Time { return time.Now().Add(notify.DesktopTokenTTL + 6*24*time.Hour) }
	fresh, err := d.Refresh(tok)
	if err != nil {
		t.Fatalf("refresh in grace: %v", err)
	}
	f.svc.Now = func() time.Time { return time.Now().Add(notify.DesktopTokenTTL + 8*24*time.Hour) }
	if _, err := d.Refresh(tok); err == nil {
		t.Fatal("refresh past the grace period worked")
	}
	f.svc.Now = time.Now
	if _, err := d.Verify(fresh); err != nil {
		t.Fatal(err)
	}
	open := dial(t, wsURL)
	open.auth(fresh)
	if err := d.Unlink("ann@example.com"); err != nil {
		t.Fatal(err)
	}
	if m := open.next(time.Second); m != nil {
		t.Fatalf("unlinked connection still open: %v", m)
	}
	if m := dial(t, wsURL).auth(fresh); m["message"] != "Invalid token" {
		t.Fatalf("revoked token: %v", m)
	}
	// Linking again does not bring the old tokens back.
	d.Authorize("ann@example.com")
	if _, err := d.Verify(fresh); err == nil {
		t.Fatal("a token from before the unlink works after a new link")
	}
}

func TestDesktopHeartbeatAndConnectionLimit(t *testing.T) {
	f := newFixture(t)
	d, wsURL := newDesktop(t, f)
	d.PingInterval, d.MaxMissed = 50*time.Millisecond, 3
	tok := tokenOf(t, must(d.Authorize("ann@example.com")))

	silent := dial(t, wsURL)
	silent.auth(tok)
	polite := dial(t, wsURL)
	polite.auth(tok)
	if m := dial(t, wsURL).auth(tok); m["message"] != "Too many connections" {
		t.Fatalf("third connection: %v", m)
	}

	// The silent client gets 3 pings and is closed; the one that answers stays.
	answered := make(chan int)
	go func() {
		n := 0
		for deadline := time.Now().Add(600 * time.Millisecond); time.Now().Before(deadline); {
			m := polite.next(time.Second)
			if m == nil {
				break
			}
			if m["type"] == "ping" {
				n++
				polite.send(map[string]string{"type": "pong"})
			}
		}
		answered <- n
	}()
	pings := 0
	for m := silent.next(time.Second); m != nil; m = silent.next(time.Second) {
		if m["type"] == "ping" {
			pings++
		}
	}
	if pings != 3 {
		t.Fatalf("silent client got %d pings before the close, want 3", pings)
	}
	if n := <-answered; n < 8 {
		t.Fatalf("answering client got %d pings in 600ms; it must stay connected", n)
	}
	if n := d.Connections()["ann@example.com"]; n != 1 {
		t.Fatalf("connections = %d, want 1", n)
	}
}

func TestDesktopOfflineQueue(t *testing.T) {
	f := newFixture(t)
	d, wsURL := newDesktop(t, f)
	ctx := context.Background()
	note := func(id string) notify.Delivery {
		n, err := f.svc.State.AddNotification(store.Notification{ID: id, User: "ann@example.com", Script: "a.sh", Title: "T " + id, Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return notify.Delivery{Note: n}
	}
	if st := d.Deliver(ctx, note("n1")); st != notify.StatusNotLinked {
		t.Fatalf("unlinked: %s", st)
	}
	tok := tokenOf(t, must(d.Authorize("ann@example.com")))
	if st := d.Deliver(ctx, note("n2")); st != notify.StatusQueued {
		t.Fatalf("offline: %s", st)
	}
	d.Deliver(ctx, note("n3"))

	c := dial(t, wsURL)
	c.auth(tok)
	for _, want := range []string{"n2", "n3"} {
		if m := c.next(time.Second); m["type"] != "notification" || m["id"] != want || m["title"] != "T "+want {
			t.Fatalf("queued %s: %v", want, m)
		}
	}
	if st := d.Deliver(ctx, note("n4")); st != notify.StatusDelivered {
		t.Fatalf("online: %s", st)
	}
	if m := c.next(time.Second); m["id"] != "n4" {
		t.Fatalf("live: %v", m)
	}
	c.send(map[string]string{"type": "ack", "id": "n2"})
	c.send(map[string]string{"type": "ack", "id": "n4"})
	time.Sleep(100 * time.Millisecond)
	c.ws.Close(websocket.StatusNormalClosure, "")

	// Reconnecting brings back only what was not acknowledged.
	c = dial(t, wsURL)
	c.auth(tok)
	if m := c.next(time.Second); m["id"] != "n3" {
		t.Fatalf("after reconnect: %v", m)
	}
	if m := c.next(300 * time.Millisecond); m != nil {
		t.Fatalf("acknowledged notification sent again: %v", m)
	}
	n2, _ := f.svc.State.Notification("n2")
	if n2.Channels["desktop"] != "acknowledged" {
		t.Fatalf("inbox status after ack: %v", n2.Channels)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
