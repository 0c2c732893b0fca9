package portal

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/gorilla/sessions"

	"github.com/ai-data-analyst/analyst/catalog"
	"github.com/ai-data-analyst/analyst/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// server is the portal: its dependencies and the state of the web side.
type server struct {
	Deps
	sessions   *store.Sessions
	links      *store.Links
	allow      *store.Allowlist
	passwords  *store.Passwords
	cookies    *sessions.CookieStore
	pages      map[string]*template.Template
	limits     *limiter
	oidc       *oidcClient
	metrics    *metrics
	sessionTTL time.Duration
	idleTTL    time.Duration
	catalog    *catalog.Store
	snap       snapshot
	bodies     bodyCache
	shells     shellCache
}

func newServer(d Deps) *server {
	s := &server{Deps: d, sessionTTL: d.SessionTTL, idleTTL: d.IdleTTL, limits: newLimiter()}
	if s.sessionTTL == 0 {
		s.sessionTTL = defaultSessionTTL
	}
	if s.idleTTL == 0 {
		s.idleTTL = defaultIdleTTL
	}
	if d.DB != nil {
		var err error
		for _, open := range []func() error{
			func() error { s.sessions, err = store.NewSessions(d.DB); return err },
			func() error { s.links, err = store.NewLinks(d.DB); return err },
			func() error { s.allow, err = store.NewAllowlist(d.DB); return err },
			func() error { s.passwords, err = store.NewPasswords(d.DB); return err },
		} {
			if err := open(); err != nil {
				s.Logger.Error("portal store", "error", err)
			}
		}
		s.cookies = s.newCookieStore()
	}
	if s.Mailer == nil {
		s.Mailer = &smtpMailer{cfg: s.Config.Instance.Email, name: s.Config.Instance.Instance.Name}
	}
	s.pages = parsePages()
	s.catalog = catalog.NewStore(d.Config, d.Logger)
	s.oidc = &oidcClient{s: s}
	s.metrics = newMetrics(s)
	return s
}

// web reports whether the portal's web side (sessions, pages) is available.
func (s *server) web() bool { return s.sessions != nil }

// webRoutes registers the pages, sign-in flows, static assets, /health and /metrics.
func (s *server) webRoutes(r, api *mux.Router) {
	r.Handle("/health", admin(s.health)).Methods(http.MethodGet)
	r.Handle("/metrics", admin(s.metrics.serve)).Methods(http.MethodGet)
	static, _ := fs.Sub(staticFS, "static")
	r.PathPrefix("/static/").Handler(http.StripPrefix("/static/", cacheForever(http.FileServerFS(static)))).Methods(http.MethodGet)
	r.HandleFunc("/theme.css", s.themeCSS).Methods(http.MethodGet)
	api.Handle("/admin/users/{email}/login-link", admin(s.apiLoginLink)).Methods(http.MethodPost)
	if !s.web() {
		return
	}
	s.authRoutes(r)
	r.Handle("/", s.page(s.dashboard)).Methods(http.MethodGet)
	r.Handle("/dashboard", http.RedirectHandler("/", http.StatusMovedPermanently)).Methods(http.MethodGet)
	r.Handle("/account/token", s.page(s.createOwnToken)).Methods(http.MethodPost)
	s.catalogRoutes(r)
	s.runRoutes(r)
	s.adminRoutes(r)
}

// chain wraps a handler that mux's middleware does not reach (the not-found handler).
func (s *server) chain(h http.Handler) http.Handler {
	return s.securityHeaders(s.authenticate(h))
}

// securityHeaders: no inline scripts or styles, no framing, no sniffing, no referrer leaks.
func (s *server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "+
			"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if !s.web() || !s.insecureCookies() {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func cacheForever(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

var colorRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// themeCSS carries the instance's primary colour as a stylesheet (the CSP allows no inline
// styles).
func (s *server) themeCSS(w http.ResponseWriter, r *http.Request) {
	color := "#0073D1"
	if c := s.Config.Instance.Instance.PrimaryColor; colorRE.MatchString(c) {
		color = c
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(":root { --primary: " + color + "; }\n"))
}

// page lets through signed-in users; others go to the sign-in page and come back after.
func (s *server) page(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if UserFrom(r.Context()) == nil {
			next := r.URL.RequestURI()
			if r.Method != http.MethodGet {
				next = "/"
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		h(w, r)
	})
}

// adminPage lets through admins; other signed-in users get a 403 page.
func (s *server) adminPage(h http.HandlerFunc) http.Handler {
	return s.page(func(w http.ResponseWriter, r *http.Request) {
		if UserFrom(r.Context()).Role != store.RoleAdmin {
			s.renderError(w, r, http.StatusForbidden, "This page is for administrators.")
			return
		}
		h(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Site    siteView
	User    *store.User
	Admin   bool
	CSRF    string
	Flashes []flash
	Title   string
	Nav     string
	Data    any
	Body    template.HTML // the page's rendered content, when cached
}

type siteView struct {
	Name, Subtitle, Copyright, Logo string
}

// render executes page name with data; every value is escaped by html/template.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	v := s.pageView(r, name, title, data)
	s.sessionView(w, r, &v)
	t, ok := s.pages[name]
	if !ok {
		s.Logger.Error("no such template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if err := t.ExecuteTemplate(buf, "layout", v); err != nil {
		s.Logger.Error("render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeHTML(w, status, buf.Bytes())
}

func writeHTML(w http.ResponseWriter, status int, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	w.Write(page)
}

// pageView is the view of page name for the request's user, without its session's part.
func (s *server) pageView(r *http.Request, name, title string, data any) view {
	user := UserFrom(r.Context())
	inst := s.Config.Instance.Instance
	return view{
		Site: siteView{Name: inst.Name, Subtitle: inst.Subtitle, Copyright: inst.Copyright, Logo: safeLogo(inst.Logo)},
		User: user, Admin: user != nil && user.Role == store.RoleAdmin,
		Title: title, Nav: name, Data: data,
	}
}

// sessionView fills in the session's part of a page: its flashes (shown once) and its CSRF
// token. The cookie is written only when it changes (flashes shown, a first CSRF token).
func (s *server) sessionView(w http.ResponseWriter, r *http.Request, v *view) {
	if !s.web() {
		return
	}
	c := s.cookie(r)
	fl := c.Flashes()
	changed := len(fl) > 0
	for _, f := range fl {
		if f, ok := f.(flash); ok {
			v.Flashes = append(v.Flashes, f)
		}
	}
	if _, ok := c.Values[keyCSRF].(string); !ok {
		c.Values[keyCSRF], changed = newCSRFToken(), true
	}
	v.CSRF = c.Values[keyCSRF].(string)
	if changed {
		if err := c.Save(r, w); err != nil {
			s.Logger.Error("save session", "error", err)
		}
	}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s *server) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", http.StatusText(status), msg)
}

// safeLogo keeps a logo URL only when it is https or a local path.
func safeLogo(logo string) string {
	if strings.HasPrefix(logo, "https://") || (strings.HasPrefix(logo, "/") && !strings.HasPrefix(logo, "//")) {
		return logo
	}
	return ""
}

// redirectBack sends a form's user back to where they came from, with a flash.
func (s *server) redirectFlash(w http.ResponseWriter, r *http.Request, to, kind, text string) {
	s.flash(w, r, kind, text)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// baseURL is where links sent to users point: instance.public_url, else https://server.hostname,
// else the loopback address of a local instance. Never the request's Host header, which a
// client can forge.
func (s *server) baseURL() string {
	if u := strings.TrimRight(s.Config.Instance.Instance.PublicURL, "/"); u != "" {
		return u
	}
	if h := s.Config.Instance.Server.Hostname; h != "" {
		return "https://" + h
	}
	return strings.TrimRight(s.LocalURL, "/")
}
