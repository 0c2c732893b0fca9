package memory_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/memory"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

var quiet = slog.New(slog.DiscardHandler)

const testKey = "sk-ant-test-key-not-real"

// reply is what the fake API answers to one call.
type reply struct {
	status int
	header map[string]string
	body   string
}

// fakeAnthropic mimics POST /v1/messages: it checks the headers and the request shape, and
// answers a forced tool call with a tool_use block. By default the "model" distils notes
// mechanically: each note line "- Title: content" is an item; an existing item with the same
// title is reused; items the notes do not mention are omitted.
type fakeAnthropic struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	prompts  []string // prompts of knowledge_items calls
	checks   []string // prompts of sensitivity calls
	collect  []reply  // scripted replies to knowledge_items calls, used first
	verdicts []reply  // scripted replies to sensitivity calls, used first
	unsafe   string   // a sensitivity call whose prompt contains this is answered unsafe
}

func newFake(t *testing.T) *fakeAnthropic {
	f := &fakeAnthropic{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func apiErr(status int, typ, msg string, header map[string]string) reply {
	b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}, "request_id": "req_011"})
	return reply{status: status, header: header, body: string(b)}
}

func toolReply(name string, input any, stop string) reply {
	b, _ := json.Marshal(map[string]any{
		"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
		"content":     []any{map[string]any{"type": "tool_use", "id": "toolu_01", "name": name, "input": input}},
		"stop_reason": stop, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 100, "output_tokens": 50},
	})
	return reply{status: 200, body: string(b)}
}

func (f *fakeAnthropic) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"type":"error","error":{"type":"not_found_error","message":"Not found"}}`)
		return
	}
	if r.Header.Get("x-api-key") != testKey {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
		return
	}
	if r.Header.Get("anthropic-version") != "2023-06-01" || !strings.HasPrefix(r.Header.Get("content-type"), "application/json") {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version and content-type are required"}}`)
		return
	}
	var req struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
		System    string `json:"system"`
		Messages  []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		Tools []struct {
			Name        string         `json:"name"`
			InputSchema map[string]any `json:"input_schema"`
		} `json:"tools"`
		ToolChoice struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"tool_choice"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model == "" || req.MaxTokens <= 0 ||
		len(req.Messages) != 1 || req.Messages[0].Role != "user" || len(req.Tools) != 1 ||
		req.ToolChoice.Type != "tool" || req.ToolChoice.Name != req.Tools[0].Name || req.Tools[0].InputSchema["type"] != "object" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad request shape"}}`)
		return
	}
	prompt := req.Messages[0].Content
	f.mu.Lock()
	var rep reply
	switch req.ToolChoice.Name {
	case "knowledge_items":
		f.prompts = append(f.prompts, prompt)
		if len(f.collect) > 0 {
			rep, f.collect = f.collect[0], f.collect[1:]
		} else {
			rep = toolReply("knowledge_items", distil(prompt), "tool_use")
		}
	case "sensitivity_verdict":
		f.checks = append(f.checks, prompt)
		switch {
		case len(f.verdicts) > 0:
			rep, f.verdicts = f.verdicts[0], f.verdicts[1:]
		case f.unsafe != "" && strings.Contains(prompt, f.unsafe):
			rep = toolReply("sensitivity_verdict", map[string]any{"safe": false, "reason": "confidential"}, "tool_use")
		default:
			rep = toolReply("sensitivity_verdict", map[string]any{"safe": true}, "tool_use")
		}
	default:
		rep = apiErr(400, "invalid_request_error", "unknown tool", nil)
	}
	f.mu.Unlock()
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

var (
	userBlock = regexp.MustCompile("(?s)### User: (U\\d+)\n(`{3,})markdown\n(.*?)\n`{3,}\n")
	noteLine  = regexp.MustCompile(`(?m)^- ([^:\n]+): (.+)$`)
)

// distil is the fake model: note lines become items, reusing existing items by title.
func distil(prompt string) map[string]any {
	existing := map[string]string{} // title -> id
	ex, _, _ := strings.Cut(strings.TrimPrefix(prompt, "## Existing items\n"), "\n## Notes\n")
	for _, line := range strings.Split(ex, "\n") {
		var it struct{ ID, Title string }
		if json.Unmarshal([]byte(line), &it) == nil && it.ID != "" {
			existing[it.Title] = it.ID
		}
	}
	type item struct {
		id             any
		title, content string
		users          []string
	}
	byTitle := map[string]*item{}
	var order []string
	for _, m := range userBlock.FindAllStringSubmatch(prompt, -1) {
		for _, l := range noteLine.FindAllStringSubmatch(m[3], -1) {
			title := strings.TrimSpace(l[1])
			it := byTitle[title]
			if it == nil {
				it = &item{title: title, content: strings.TrimSpace(l[2])}
				if id, ok := existing[title]; ok {
					it.id = id
				}
				byTitle[title] = it
				order = append(order, title)
			}
			it.users = append(it.users, m[1])
		}
	}
	items := []any{}
	for _, t := range order {
		it := byTitle[t]
		items = append(items, map[string]any{"existing_id": it.id, "title": it.title, "content": it.content,
			"category": "data_analysis", "tags": []string{"sql", "orders"}, "source_users": it.users})
	}
	return map[string]any{"items": items}
}

func (f *fakeAnthropic) calls() (collect, checks int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.prompts), len(f.checks)
}

func (f *fakeAnthropic) prompt(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prompts[i]
}

// recorder is a publisher keeping every event it is given.
type recorder struct {
	mu     sync.Mutex
	events []pipeline.MemoryItemChanged
	topics []string
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.topics = append(r.topics, topic)
		if topic == pipeline.TopicMemoryItemChanged {
			var ev pipeline.MemoryItemChanged
			if err := json.Unmarshal(m.Payload, &ev); err != nil {
				return err
			}
			r.events = append(r.events, ev)
		}
	}
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) actions(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.ItemID == id {
			out = append(out, e.Action+" by "+e.By)
		}
	}
	return out
}

// env is a memory service on a real bbolt store with a fake model and a clock.
type env struct {
	t     *testing.T
	db    *bolt.DB
	cfg   *config.Config
	users *store.Users
	mem   *store.Memory
	svc   *memory.Service
	fake  *fakeAnthropic
	rec   *recorder
	now   time.Time
}

func newEnv(t *testing.T, opts memory.Options) *env {
	t.Helper()
	cfg := testenv.Instance(t, map[string]string{
		"config/instance.yaml":     "instance: {name: Memory test}\nauth: {allowed_domain: acme.com}\n",
		"docs/data_description.md": "```yaml\ntables: []\n```\n",
	})
	db := testenv.OpenStore(t, cfg.Paths.Store)
	users, _ := store.NewUsers(db)
	mem, err := store.NewMemory(db)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, cfg: cfg, users: users, mem: mem, fake: newFake(t), rec: &recorder{}, now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	prov := &memory.Anthropic{BaseURL: e.fake.srv.URL, APIKey: testKey, Backoff: time.Millisecond, MaxWait: 10 * time.Millisecond, Logger: quiet}
	e.svc = memory.New(cfg, mem, users, prov, opts, quiet)
	e.svc.Now = func() time.Time { return e.now }
	e.svc.SetPublisher(e.rec)
	return e
}

// analyst adds a consenting user with notes.
func (e *env) analyst(email, notes string) {
	e.t.Helper()
	if _, err := e.users.Get(email); err != nil {
		if _, err := e.users.Add(email, store.RoleAnalyst); err != nil {
			e.t.Fatal(err)
		}
		if err := e.svc.SetConsent(email, true); err != nil {
			e.t.Fatal(err)
		}
	}
	e.notes(email, notes)
}

func (e *env) notes(email, notes string) {
	e.t.Helper()
	p := e.svc.NotesPath(email)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(notes), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) collect() pipeline.MemoryCollected {
	e.t.Helper()
	req := pipeline.MemoryCollectRequested{Trigger: "test"}
	pipeline.Stamp(&req.Header, fmt.Sprintf("mem-%d", e.now.Unix()), "")
	out, err := e.svc.Collect(e.t.Context(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// byTitle returns every item by its title.
func (e *env) byTitle() map[string]store.MemoryItem {
	e.t.Helper()
	items, err := e.mem.Items()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]store.MemoryItem{}
	for _, it := range items {
		out[it.Title] = it
	}
	return out
}

func titles(m map[string]store.MemoryItem) []string {
	var out []string
	for t := range m {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func removeFile(p string) error { return os.Remove(p) }
