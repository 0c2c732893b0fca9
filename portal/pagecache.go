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
	gen     uint64 // bumped by every state-changing request
	entries map[string]*cachedBody
}

type cachedBody struct {
	html       []byte
	at         time.Time
	refreshing bool // one request is rendering its successor; the others still serve this one
}

// lookup gives the body to serve under key, or build=true when the caller must render it (and
// put it with gen). An expired body is rendered again by one request at a time, while the
// others keep serving it: a hundred sessions must not all render the same page at once.
func (c *bodyCache) lookup(key string) (html []byte, gen uint64, build bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	switch {
	case !ok:
		return nil, c.gen, true
	case time.Since(e.at) < bodyTTL || e.refreshing:
		return e.html, 0, false
	default:
		e.refreshing = true
		return nil, c.gen, true
	}
}

// put keeps a body rendered from state read at gen, unless a write has happened since.
func (c *bodyCache) put(key string, gen uint64, html []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.entries == nil || len(c.entries) >= bodyEntries {
		c.entries = map[string]*cachedBody{}
	}
	c.entries[key] = &cachedBody{html: html, at: time.Now()}
}

// abandon lets another request render key after this one failed to.
func (c *bodyCache) abandon(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		e.refreshing = false
	}
}

// clear forgets every body: none rendered before a write is served after it.
func (c *bodyCache) clear() {
	c.mu.Lock()
	c.gen++
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
func (s *server) renderCached(w http.ResponseWriter, r *http.Request, name, title, key string, data func() (any, error)) {
	key = name + "\x00" + key
	body, gen, build := s.bodies.lookup(key)
	if build {
		var err error
		if body, err = s.renderBody(r, name, title, data); err != nil {
			s.bodies.abandon(key)
			s.failPage(w, r, err)
			return
		}
		s.bodies.put(key, gen, body)
	}
	s.writeCached(w, r, name, title, body)
}

// writeCached writes page name around a cached body. The layout around it depends only on the
// user, the page and the flashes, so without flashes it is cached too: the page then costs two
// copies.
func (s *server) writeCached(w http.ResponseWriter, r *http.Request, name, title string, body []byte) {
	v := s.pageView(r, name, title, nil)
	s.sessionView(w, r, &v)
	csrf := v.CSRF
	v.CSRF, v.Body = csrfPlaceholder, bodyMarker
	shellKey := name + "\x00" + title + "\x00" + v.User.Email + "\x00" + string(v.User.Role)
	shell, ok := []byte(nil), false
	if len(v.Flashes) == 0 {
		shell, ok = s.shells.get(shellKey)
	}
	if !ok {
		var buf bytes.Buffer
		if err := s.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
			s.failPage(w, r, err)
			return
		}
		shell = buf.Bytes()
		if len(v.Flashes) == 0 {
			s.shells.put(shellKey, shell)
		}
	}
	head, tail, _ := bytes.Cut(shell, []byte(bodyMarker))
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	for _, part := range [][]byte{head, body, tail} {
		appendReplacing(buf, part, csrfPlaceholder, csrf)
	}
	writeHTML(w, http.StatusOK, buf.Bytes())
}

// bodyMarker marks where a cached layout takes the body.
const bodyMarker = template.HTML("<!--analyst-page-body-->")

// appendReplacing appends src to buf with every old replaced by new.
func appendReplacing(buf *bytes.Buffer, src []byte, old, new string) {
	for {
		i := bytes.Index(src, []byte(old))
		if i < 0 {
			buf.Write(src)
			return
		}
		buf.Write(src[:i])
		buf.WriteString(new)
		src = src[i+len(old):]
	}
}

// shellCache keeps rendered layouts (without flashes) per page and user; they depend on
// nothing that changes while the process runs but the user's role, which is in the key.
type shellCache struct {
	mu      sync.Mutex
	entries map[string][]byte
}

const shellEntries = 4096

func (c *shellCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.entries[key]
	return b, ok
}

func (c *shellCache) put(key string, shell []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= shellEntries {
		c.entries = map[string][]byte{}
	}
	c.entries[key] = shell
}

// renderBody executes page name's content template with the data that data gives, the CSRF token left
// as a placeholder.
func (s *server) renderBody(r *http.Request, name, title string, data func() (any, error)) ([]byte, error) {
	d, err := data()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	v := s.pageView(r, name, title, d)
	v.CSRF = csrfPlaceholder
	if err := s.pages[name].ExecuteTemplate(&buf, "content", v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
