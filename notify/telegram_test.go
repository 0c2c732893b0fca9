package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/notify"
)

const botToken = "123456:TEST-token"

// fakeBot mimics the Telegram Bot API: /bot<token>/<method>, JSON or multipart bodies, replies
// {"ok":true,"result":...} or {"ok":false,"error_code":...,"description":...,"parameters":{...}}.
type fakeBot struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	updates  []map[string]any
	calls    []call
	throttle map[string]int // method -> how many next calls get a 429 (retry_after 1)
	pollCode int            // non-zero: getUpdates fails with this code
	polls    int
}

type call struct {
	Method string
	Fields map[string]any
}

func newFakeBot(t *testing.T) *fakeBot {
	b := &fakeBot{t: t, throttle: map[string]int{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func reply(w http.ResponseWriter, code int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}

func apiErr(w http.ResponseWriter, code int, desc string, params map[string]any) {
	body := map[string]any{"ok": false, "error_code": code, "description": desc}
	if params != nil {
		body["parameters"] = params
	}
	reply(w, code, body)
}

// unbalanced mimics "can't parse entities": an odd number of * or _ outside escapes.
func unbalanced(s string) bool {
	s = strings.NewReplacer(`\*`, "", `\_`, "", "\\`", "", `\[`, "").Replace(s)
	return strings.Count(s, "*")%2 == 1 || strings.Count(s, "_")%2 == 1
}

func (b *fakeBot) serve(w http.ResponseWriter, r *http.Request) {
	token, method, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/bot"), "/")
	if !ok || token != botToken {
		apiErr(w, 401, "Unauthorized", nil)
		return
	}
	fields := map[string]any{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		if err := r.ParseMultipartForm(10 << 20); err != nil {
			apiErr(w, 400, "Bad Request: bad multipart", nil)
			return
		}
		for k, v := range r.MultipartForm.Value {
			fields[k] = v[0]
		}
		if f, h, err := r.FormFile("photo"); err == nil {
			data, _ := io.ReadAll(f)
			fields["photo"] = fmt.Sprintf("%s:%d", h.Filename, len(data))
		}
	} else {
		json.NewDecoder(r.Body).Decode(&fields)
	}
	b.mu.Lock()
	if method == "getUpdates" {
		b.polls++
		code := b.pollCode
		b.mu.Unlock()
		switch code {
		case 401:
			apiErr(w, 401, "Unauthorized", nil)
			return
		case 409:
			apiErr(w, 409, "Conflict: terminated by other getUpdates request", nil)
			return
		}
		b.getUpdates(w, r, fields)
		return
	}
	b.calls = append(b.calls, call{method, fields})
	if b.throttle[method] > 0 {
		b.throttle[method]--
		b.mu.Unlock()
		apiErr(w, 429, "Too Many Requests: retry after 1", map[string]any{"retry_after": 1})
		return
	}
	b.mu.Unlock()
	text, _ := fields["text"].(string)
	if method == "sendPhoto" {
		text, _ = fields["caption"].(string)
	}
	if fields["parse_mode"] == "Markdown" && unbalanced(text) {
		apiErr(w, 400, "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 3", nil)
		return
	}
	if method == "sendMessage" && len([]rune(text)) > 4096 || method == "sendPhoto" && len([]rune(text)) > 1024 {
		apiErr(w, 400, "Bad Request: message is too long", nil)
		return
	}
	reply(w, 200, map[string]any{"ok": true, "result": map[string]any{"message_id": len(b.calls)}})
}

// getUpdates returns the updates from offset on, waiting up to a short while for one.
func (b *fakeBot) getUpdates(w http.ResponseWriter, r *http.Request, fields map[string]any) {
	offset, _ := fields["offset"].(float64)
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		b.mu.Lock()
		var out []map[string]any
		for _, u := range b.updates {
			if u["update_id"].(int) >= int(offset) {
				out = append(out, u)
			}
		}
		b.mu.Unlock()
		if len(out) > 0 || time.Now().After(deadline) || r.Context().Err() != nil {
			reply(w, 200, map[string]any{"ok": true, "result": append([]map[string]any{}, out...)})
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *fakeBot) say(chat int64, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.updates = append(b.updates, map[string]any{"update_id": 100 + len(b.updates),
		"message": map[string]any{"message_id": 1, "chat": map[string]any{"id": chat, "type": "private"}, "text": text}})
}

func (b *fakeBot) press(chat int64, data string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.updates = append(b.updates, map[string]any{"update_id": 100 + len(b.updates),
		"callback_query": map[string]any{"id": fmt.Sprint("cq", len(b.updates)), "from": map[string]any{"id": chat}, "data": data,
			"message": map[string]any{"message_id": 1, "chat": map[string]any{"id": chat}}}})
}

func (b *fakeBot) sent(method string) []call {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []call
	for _, c := range b.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// waitSent waits until n calls of method were made that returned (or not) and returns them.
func (b *fakeBot) waitSent(t *testing.T, method string, n int) []call {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := b.sent(method); len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: %d calls, want %d: %+v", method, len(b.sent(method)), n, b.sent(method))
	return nil
}

func newBot(f *fixture, b *fakeBot) *notify.Telegram {
	tg := &notify.Telegram{BaseURL: b.srv.URL, Token: botToken, Service: f.svc, Logger: slog.Default(),
		PollTimeout: time.Second, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxRetryWait: 5 * time.Second}
	f.svc.Telegram = tg
	return tg
}

func TestTelegramSendFallsBackToPlainTextAndHonours429(t *testing.T) {
	f := newFixture(t)
	b := newFakeBot(t)
	tg := newBot(f, b)
	ctx := context.Background()

	// Unbalanced Markdown: the first attempt is refused, the plain-text retry goes through.
	if err := tg.SendText(ctx, 7, "*Revenue* of shop_eu dropped", nil); err != nil {
		t.Fatal(err)
	}
	got := b.sent("sendMessage")
	if len(got) != 2 || got[0].Fields["parse_mode"] != "Markdown" || got[1].Fields["parse_mode"] != nil {
		t.Fatalf("calls: %+v", got)
	}

	// A 429 is waited out for retry_after seconds, then sent once.
	b.throttle["sendMessage"] = 1
	start := time.Now()
	if err := tg.SendText(ctx, 7, "*ok*", nil); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retry_after 1 not honoured: waited %s", waited)
	}
	if n := len(b.sent("sendMessage")); n != 4 {
		t.Fatalf("sendMessage calls = %d, want 4", n)
	}

	// Long text is cut to 4096 characters; captions to 1024.
	if err := tg.SendText(ctx, 7, strings.Repeat("é", 5000), nil); err != nil {
		t.Fatal(err)
	}
	img := t.TempDir() + "/chart.png"
	testenv.WriteFile(t, img, "\x89PNG\r\n\x1a\n")
	if err := tg.SendPhoto(ctx, 7, img, "*t*_"+strings.Repeat("x", 2000)); err != nil {
		t.Fatal(err)
	}
	photos := b.sent("sendPhoto")
	if len(photos) != 2 || photos[1].Fields["parse_mode"] != nil || len([]rune(photos[1].Fields["caption"].(string))) != 1024 ||
		photos[1].Fields["photo"] != "chart.png:8" {
		t.Fatalf("photo calls: %+v", photos)
	}
}

func TestTelegramLinkingAndCommands(t *testing.T) {
	f := newFixture(t)
	b := newFakeBot(t)
	tg := newBot(f, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { tg.Poll(ctx); close(done) }()
	const chat = 4242

	b.say(chat, "/start@TestBot")
	msg := b.waitSent(t, "sendMessage", 1)[0].Fields["text"].(string)
	code := ""
	for _, w := range strings.Fields(strings.ReplaceAll(msg, "*", " ")) {
		if len(w) == 6 && strings.Trim(w, "0123456789") == "" {
			code = w
		}
	}
	if code == "" {
		t.Fatalf("no 6-digit code in %q", msg)
	}

	// Wrong codes count; the fifth wrong one locks the user out even of the right code.
	for i := 0; i < 4; i++ {
		if _, err := f.svc.State.VerifyTelegramCode("ann@example.com", "000000", time.Now()); err == nil {
			t.Fatal("a wrong code linked")
		}
	}
	link, err := f.svc.State.VerifyTelegramCode("ann@example.com", code, time.Now())
	if err != nil || link.ChatID != chat {
		t.Fatalf("verify: %+v %v", link, err)
	}
	if _, err := f.svc.State.VerifyTelegramCode("pat@example.com", code, time.Now()); err == nil {
		t.Fatal("a code worked twice")
	}

	f.svc.Put("ann@example.com", "quiet.sh", []byte(`echo '{"notify": false}'`))
	b.say(chat, "/whoami")
	b.say(chat, "/status")
	texts := b.waitSent(t, "sendMessage", 3)
	if !strings.Contains(texts[1].Fields["text"].(string), "ann@example.com") {
		t.Fatalf("whoami: %v", texts[1].Fields)
	}
	status := texts[2]
	kb, _ := json.Marshal(status.Fields["reply_markup"])
	if !strings.Contains(status.Fields["text"].(string), "quiet.sh") || !strings.Contains(string(kb), `"callback_data":"run:quiet.sh"`) {
		t.Fatalf("status: %v %s", status.Fields, kb)
	}

	// A Run button needs no router here: the request fails to queue, which the bot reports.
	b.press(chat, "run:quiet.sh")
	answers := b.waitSent(t, "answerCallbackQuery", 1)
	if answers[0].Fields["text"] != "Running quiet.sh..." {
		t.Fatalf("answer: %v", answers[0].Fields)
	}
	b.press(chat, "delete:everything")
	if a := b.waitSent(t, "answerCallbackQuery", 2)[1]; a.Fields["text"] != "Unknown action" {
		t.Fatalf("answer: %v", a.Fields)
	}

	b.say(chat, "/stop")
	b.say(chat, "/whoami")
	texts = b.waitSent(t, "sendMessage", 6)
	if !strings.Contains(texts[3].Fields["text"].(string), "Could not start") {
		t.Fatalf("run without a running pipeline: %v", texts[3].Fields)
	}
	if last := texts[len(texts)-1].Fields["text"].(string); !strings.Contains(last, "No linked account") {
		t.Fatalf("after /stop: %q", last)
	}
	if _, ok, _ := f.svc.State.TelegramLink("ann@example.com"); ok {
		t.Fatal("/stop left the link")
	}
	cancel()
	<-done

	// A restart continues after the last handled update: nothing is answered twice.
	before := len(b.sent("sendMessage"))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel2()
	tg.Poll(ctx2)
	if after := len(b.sent("sendMessage")); after != before {
		t.Fatalf("a restarted bot answered %d old updates again", after-before)
	}
}

func TestTelegramPollBacksOffOn401And409(t *testing.T) {
	for _, code := range []int{401, 409} {
		f := newFixture(t)
		b := newFakeBot(t)
		b.pollCode = code
		tg := newBot(f, b)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		tg.Poll(ctx)
		cancel()
		// Backoff 50, 100, 200, 200, ... ms: about 6 polls in a second, not thousands.
		if b.polls > 10 || b.polls < 2 {
			t.Fatalf("%d: %d polls in one second", code, b.polls)
		}
	}
}
