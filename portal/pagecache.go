package portal

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ai-data-analyst/analyst/store"
)

// The dashboard, the catalogue and a table's page are what every analyst opens, and rendering
// them (html/template escapes every value through reflection) costs far more than finding
// their data. So their body, the part inside the layout, is rendered once per key and reused
// for up to bodyTTL, the age the pages already allow their sync snapshot. The key holds all
// that the body depends on: the user's role and visible tables, never the user's identity;
// the CSRF token is a placeholder replaced per request. Any state-changing request empties
// the cache, so what a user just did shows on the next page.
const (
	bodyTTL     = snapshotTTL
	bodyEntries = 512 // distinct keys kept (roles × visibility sets × pages × searches)
)

// csrfPlaceholder stands for the session's CSRF token in a cached body: random per process, so
// no page content can forge it.
var csrfPlaceholder = func() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "csrf-" + hex.EncodeToString(b)
}()

type bodyCache struct {
	mu      sync.Mutex
	entries map[string]cachedBody
}

type cachedBody struct {
	html []byte
	at   time.Time
}

func (c *bodyCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || time.Since(e.at) >= bodyTTL {
		return nil, false
	}
	return e.html, true
}

func (c *bodyCache) put(key string, html []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= bodyEntries {
		c.entries = map[string]cachedBody{}
	}
	c.entries[key] = cachedBody{html: html, at: time.Now()}
}

func (c *bodyCache) clear() {
	c.mu.Lock()
	c.entries = nil
	c.mu.Unlock()
}

// clearBodiesOnWrite empties the body cache after every state-changing request.
func (s *server) clearBodiesOnWrite(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if !safeMethod(r.Method) {
			s.bodies.clear()
		}
	})
}

// visibilityKey names what user may see: the role and the visible tables (and datasets on).
func (s *server) visibilityKey(user *store.User) string {
	var b strings.Builder
	b.WriteString(string(user.Role))
	for _, t := range s.Policy.Visible(user) {
		b.WriteByte('\x00')
		b.WriteString(t.Name)
	}
	var on []string
	for d, ok := range user.Datasets {
		if ok {
			on = append(on, d)
		}
	}
	slices.Sort(on)
	b.WriteString("\x00datasets\x00")
	b.WriteString(strings.Join(on, "\x00"))
	return b.String()
}

// renderCached renders page name with the body kept under key, building its data only when
// the body is not cached. key must capture everything but the user's identity that the body
// depends on (start from visibilityKey).
func (s *server) renderCached(w http.ResponseWriter, r *http.Request, name, title, key string, build func() (any, error)) {
	key = name + "\x00" + key
	body, ok := s.bodies.get(key)
	if !ok {
		data, err := build()
		if err != nil {
			s.failPage(w, r, err)
			return
		}
		var buf bytes.Buffer
		v := s.pageView(r, name, title, data)
		v.CSRF = csrfPlaceholder
		if err := s.pages[name].ExecuteTemplate(&buf, "content", v); err != nil {
			s.failPage(w, r, err)
			return
		}
		body = buf.Bytes()
		s.bodies.put(key, body)
	}
	s.renderPage(w, r, http.StatusOK, name, title, nil, func(csrf string) template.HTML {
		return template.HTML(bytes.ReplaceAll(body, []byte(csrfPlaceholder), []byte(csrf)))
	})
}
