package portal_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/store"
)

// webFixture is a portal with its web side: a store, a mock Google (OIDC) and a mail sink.
type webFixture struct {
	srv        *httptest.Server
	url        string
	cfg        *config.Config
	users      *store.Users
	runs       *store.Runs
	adminToken string
	oidc       *mockoidc.MockOIDC
	mail       *smtpSink
	synced     [][]string
}

type webOptions struct {
	secure   bool          // leave dev mode off: cookies are Secure
	idle     time.Duration // idle expiry
	replayer *pipeline.Replayer
	log      *pipeline.BoltPubSub
	sync     func(tables []string, trigger, by string) (string, error)
	home     string // an instance folder prepared by the caller
	// pipeline, when set, runs a real pipeline on the fixture's store.
	pipeline func(cfg *config.Config, db *bolt.DB, runs *store.Runs) (sync func([]string, string, string) (string, error), rep *pipeline.Replayer, log *pipeline.BoltPubSub)
}

// lags is the fixture's pipeline lag source: its log, when it has one.
func (o webOptions) lags() pipeline.Lagger {
	if o.log == nil {
		return nil
	}
	return o.log
}

func newWebFixture(t *testing.T, o webOptions) *webFixture {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	sink := newSMTPSink(t)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	home := o.home
	if home == "" {
		home = t.TempDir()
		writeFile(t, home, "docs/data_description.md", "```yaml\ntables:\n"+
			"  - {id: a.orders, name: orders, folder: sales, description: \"Orders <script>alert('x')</script>\", primary_key: id, sync_strategy: full_refresh, schedule: every 6h}\n"+
			"  - {id: a.salaries, name: salaries, folder: hr, description: Pay, primary_key: id, sync_strategy: full_refresh}\n```\n")
	}
	writeFile(t, home, "config/instance.yaml", fmt.Sprintf(`instance: {name: "Portal <Test>", public_url: %q, primary_color: "#112233"}
data_source: {type: csv, csv: {path: source}}
access: {private_folders: [hr]}
auth: {allowed_domains: [example.com], google_client_id: %q, google_client_secret: %q}
email: {smtp_url: %q, from_address: portal@example.com}
jira: {domain: acme.atlassian.net}
datasets:
  marketing: {label: Marketing, description: Campaigns}
  attribution: {label: Attribution, requires: [marketing]}
`, base, m.ClientID, m.ClientSecret, "smtp://"+sink.addr))
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.OpenStore(t, cfg.Paths.Store)
	users, _ := store.NewUsers(db)
	runs, _ := store.NewRuns(db)
	f := &webFixture{srv: srv, url: base, cfg: cfg, users: users, runs: runs, oidc: m, mail: sink}
	users.Add("boss@example.com", store.RoleAdmin)
	f.adminToken, _, _ = users.CreateToken("boss@example.com", "test")
	users.Add("ann@example.com", store.RoleAnalyst)
	users.Add("pat@example.com", store.RolePrivileged)
	if o.pipeline != nil {
		o.sync, o.replayer, o.log = o.pipeline(cfg, db, runs)
	}
	if o.sync == nil {
		o.sync = func(tables []string, trigger, by string) (string, error) {
			f.synced = append(f.synced, tables)
			run, err := runs.Create(fmt.Sprintf("run-%d", len(f.synced)), trigger, tables)
			return run.RunID, err
		}
	}
	srv.Config.Handler = portal.New(portal.Deps{
		Config: cfg, Runs: runs, Users: users, Policy: &access.Policy{Config: cfg, Users: users},
		RequestSync: o.sync, Replayer: o.replayer, Lags: o.lags(),
		DB: db, OIDCIssuer: m.Issuer(), DevMode: !o.secure, IdleTTL: o.idle,
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

func writeFile(t *testing.T, home, rel, content string) {
	t.Helper()
	p := filepath.Join(home, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t    *testing.T
	f    *webFixture
	c    *http.Client
	csrf string
}

func (f *webFixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfMeta = regexp.MustCompile(`name="csrf-token" content="([^"]*)"`)

type page struct {
	code     int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values, headers ...string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.f.url + path
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if m := csrfMeta.FindSubmatch(out); m != nil {
		b.csrf = string(m[1])
	}
	return page{code: resp.StatusCode, body: string(out), location: resp.Header.Get("Location"), header: resp.Header}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil) }

// post sends a form with the page's CSRF token.
func (b *browser) post(path string, form url.Values) page {
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", b.csrf)
	return b.do("POST", path, form)
}

// follow GETs redirects until a page.
func (b *browser) follow(p page) page {
	for i := 0; i < 10 && p.location != ""; i++ {
		p = b.get(p.location)
	}
	return p
}

// signIn opens a session for email through a login link, as an admin would hand it out.
func (f *webFixture) signIn(t *testing.T, email string) *browser {
	t.Helper()
	req, _ := http.NewRequest("POST", f.url+"/api/admin/users/"+email+"/login-link", nil)
	req.Header.Set("Authorization", "Bearer "+f.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ URL string }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(out.URL, f.url+"/login/link/") {
		t.Fatalf("login link: %d %q", resp.StatusCode, out.URL)
	}
	b := f.browser(t)
	if p := b.get(out.URL); p.code != 200 || !strings.Contains(p.body, email) {
		t.Fatalf("login link page: %d", p.code)
	}
	p := b.post(out.URL, nil)
	if p.code != http.StatusSeeOther || p.location != "/" {
		t.Fatalf("login link sign-in: %d %s", p.code, p.location)
	}
	if p := b.get("/"); p.code != 200 || !strings.Contains(p.body, `id="user-email">`+email) {
		t.Fatalf("dashboard after sign-in: %d", p.code)
	}
	return b
}

// TestPageAuth checks every page and form for anonymous, analyst, privileged and admin users.
func TestPageAuth(t *testing.T) {
	f := newWebFixture(t, webOptions{})
	f.runs.Create("run-1", "manual", []string{"orders"})
	f.users.CreateToken("ann@example.com", "x")
	toks, _ := f.users.Tokens("ann@example.com")
	routes := []struct {
		method, path string
		form         url.Values
		anyone       bool // any signed-in user; otherwise admins only
	}{
		{"GET", "/", nil, true},
		{"GET", "/catalog", nil, true},
		{"GET", "/catalog?q=ord", nil, true},
		{"GET", "/catalog/orders", nil, true},
		{"POST", "/account/token", nil, true},
		{"POST", "/catalog/datasets", url.Values{"dataset": {"marketing"}, "on": {"1"}}, true},
		{"GET", "/runs", nil, false},
		{"GET", "/runs/run-1", nil, false},
		{"POST", "/runs/run-1/retry", nil, false},
		{"GET", "/admin", nil, false},
		{"POST", "/admin/users", url.Values{"email": {"new@example.com"}, "role": {"analyst"}}, false},
		{"POST", "/admin/users/pat@example.com/role", url.Values{"role": {"privileged"}}, false},
		{"POST", "/admin/users/new@example.com/disable", nil, false},
		{"POST", "/admin/users/new@example.com/enable", nil, false},
		{"POST", "/admin/users/ann@example.com/tokens", nil, false},
		{"POST", "/admin/users/ann@example.com/tokens/" + toks[0].ID + "/revoke", nil, false},
		{"POST", "/admin/users/ann@example.com/login-link", nil, false},
		{"POST", "/admin/allowlist", url.Values{"kind": {"email"}, "value": {"ext@partner.io"}}, false},
		{"POST", "/admin/allowlist/remove", url.Values{"kind": {"email"}, "value": {"ext@partner.io"}}, false},
		{"POST", "/admin/sources/csv/test", nil, false},
		{"POST", "/admin/sync", url.Values{"table": {"orders"}}, false},
	}
	anon := f.browser(t)
	anon.get("/login") // a CSRF token, so that the forms reach their auth check
	analyst, privileged, admin := f.signIn(t, "ann@example.com"), f.signIn(t, "pat@example.com"), f.signIn(t, "boss@example.com")
	for _, rt := range routes {
		var p page
		if rt.method == "GET" {
			p = anon.get(rt.path)
		} else {
			p = anon.post(rt.path, rt.form)
		}
		if p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login?next=") {
			t.Errorf("anonymous %s %s: %d %s, want a redirect to sign-in", rt.method, rt.path, p.code, p.location)
		}
		for name, b := range map[string]*browser{"analyst": analyst, "privileged": privileged} {
			if rt.method == "GET" {
				p = b.get(rt.path)
			} else {
				p = b.post(rt.path, cloneForm(rt.form))
			}
			if rt.anyone && p.code >= 400 {
				t.Errorf("%s %s %s: %d", name, rt.method, rt.path, p.code)
			}
			if !rt.anyone && p.code != http.StatusForbidden {
				t.Errorf("%s %s %s: %d, want 403", name, rt.method, rt.path, p.code)
			}
		}
		if rt.method == "GET" {
			p = admin.get(rt.path)
		} else {
			p = admin.post(rt.path, cloneForm(rt.form))
		}
		if p.code >= 400 {
			t.Errorf("admin %s %s: %d %s", rt.method, rt.path, p.code, p.body)
		}
	}
	if p := anon.get("/runs/run-1?x=1"); p.location != "/login?next="+url.QueryEscape("/runs/run-1?x=1") {
		t.Errorf("the sign-in page must know where to return: %s", p.location)
	}
	// Admin APIs: 401 without a session, 403 for analysts, JSON for admins.
	for _, path := range []string{"/health", "/metrics"} {
		if p := f.browser(t).get(path); p.code != http.StatusUnauthorized {
			t.Errorf("anonymous %s: %d", path, p.code)
		}
		if p := analyst.get(path); p.code != http.StatusForbidden {
			t.Errorf("analyst %s: %d", path, p.code)
		}
		if p := admin.get(path); p.code != 200 && p.code != 503 {
			t.Errorf("admin %s: %d", path, p.code)
		}
	}
	for _, b := range []*browser{analyst, privileged} {
		if p := b.do("POST", "/api/admin/users/ann@example.com/login-link", nil, "X-CSRF-Token", b.csrf); p.code != http.StatusForbidden {
			t.Errorf("non-admin login link: %d", p.code)
		}
	}
	if p := f.browser(t).do("POST", "/api/admin/users/ann@example.com/login-link", nil); p.code != http.StatusUnauthorized {
		t.Errorf("anonymous login link: %d", p.code)
	}
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// TestCSRF: cookie sessions need the token for every change; bearer tokens do not.
func TestCSRF(t *testing.T) {
	f := newWebFixture(t, webOptions{})
	admin := f.signIn(t, "boss@example.com")
	body := url.Values{}
	if p := admin.do("POST", "/admin/sync", body); p.code != http.StatusForbidden || len(f.synced) != 0 {
		t.Fatalf("form without token: %d, synced %v", p.code, f.synced)
	}
	if p := admin.do("POST", "/admin/sync", url.Values{"csrf_token": {"forged"}}); p.code != http.StatusForbidden {
		t.Fatalf("form with a wrong token: %d", p.code)
	}
	if p := admin.do("POST", "/api/sync", nil, "Content-Type", "application/json"); p.code != http.StatusForbidden || !strings.Contains(p.body, "CSRF") {
		t.Fatalf("cookie JSON call without token: %d %s", p.code, p.body)
	}
	req, _ := http.NewRequest("POST", f.url+"/api/sync", strings.NewReader(`{"tables":["orders"]}`))
	req.Header.Set("X-CSRF-Token", admin.csrf)
	resp, err := admin.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cookie JSON call with token: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", f.url+"/api/sync", strings.NewReader(`{"tables":["orders"]}`))
	req.Header.Set("Authorization", "Bearer "+f.adminToken)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("bearer call needs no CSRF token: %d", resp.StatusCode)
	}
	// Login CSRF: the sign-in forms need the token too.
	anon := f.browser(t)
	if p := anon.do("POST", "/login/email", url.Values{"email": {"x@example.com"}, "password": {"x"}}); p.code != http.StatusForbidden {
		t.Fatalf("sign-in form without token: %d", p.code)
	}
	if p := admin.post("/logout", nil); p.code != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.code)
	}
}

// TestSessionCookieAndRevocation: the cookie's flags, sign-out and disabling end a session
// server-side even when the old cookie is replayed, and idle sessions expire.
func TestSessionCookieAndRevocation(t *testing.T) {
	f := newWebFixture(t, webOptions{secure: true})
	p := f.browser(t).get("/login")
	c := p.header.Get("Set-Cookie")
	for _, want := range []string{"analyst_session=", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=43200"} {
		if !strings.Contains(c, want) {
			t.Errorf("cookie %q lacks %s", c, want)
		}
	}
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || p.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: %v", p.header)
	}

	f = newWebFixture(t, webOptions{idle: 2 * time.Second})
	ann := f.signIn(t, "ann@example.com")
	u, _ := url.Parse(f.url)
	stolen := ann.c.Jar.Cookies(u)
	ann.post("/logout", nil)
	replay := f.browser(t)
	replay.c.Jar.SetCookies(u, stolen)
	if p := replay.get("/"); p.code != http.StatusSeeOther {
		t.Fatalf("a signed-out session must not come back with its old cookie: %d", p.code)
	}

	ann = f.signIn(t, "ann@example.com")
	admin := f.signIn(t, "boss@example.com")
	if p := admin.post("/admin/users/ann@example.com/disable", nil); p.code != http.StatusSeeOther {
		t.Fatalf("disable: %d", p.code)
	}
	if p := ann.get("/"); p.code != http.StatusSeeOther {
		t.Fatalf("a disabled user's session must end: %d", p.code)
	}
	if p := admin.post("/admin/users/boss@example.com/disable", nil); !strings.Contains(admin.follow(p).body, "cannot change your own") {
		t.Fatal("an admin must not disable themselves")
	}

	pat := f.signIn(t, "pat@example.com")
	time.Sleep(2500 * time.Millisecond)
	if p := pat.get("/"); p.code != http.StatusSeeOther {
		t.Fatalf("an idle session must expire: %d", p.code)
	}
}

// TestGoogleSignIn runs the OIDC flow against a mock provider.
func TestGoogleSignIn(t *testing.T) {
	f := newWebFixture(t, webOptions{})
	signIn := func(u *mockoidc.MockUser, next string) (*browser, page) {
		f.oidc.QueueUser(u)
		b := f.browser(t)
		p := b.get("/login/google?next=" + url.QueryEscape(next))
		if p.code != http.StatusFound {
			t.Fatalf("start: %d %s", p.code, p.body)
		}
		loc, _ := url.Parse(p.location)
		q := loc.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" ||
			q.Get("redirect_uri") != f.url+"/auth/callback" {
			t.Fatalf("authorization request lacks PKCE, nonce, state or the configured redirect: %s", p.location)
		}
		p = b.get(p.location) // the provider redirects straight back
		return b, b.follow(p)
	}
	_, p := signIn(&mockoidc.MockUser{Subject: "1", Email: "Zoe@Example.com", EmailVerified: true}, "/catalog/orders")
	if p.code != 200 || !strings.Contains(p.body, `id="table-name">orders`) || !strings.Contains(p.body, "zoe@example.com") {
		t.Fatalf("a verified user of an allowed domain must land on the page asked for: %d", p.code)
	}
	if u, err := f.users.Get("zoe@example.com"); err != nil || u.Role != store.RoleAnalyst {
		t.Fatalf("first sign-in creates an analyst: %+v %v", u, err)
	}
	_, p = signIn(&mockoidc.MockUser{Subject: "2", Email: "eve@example.com", EmailVerified: false}, "/")
	if !strings.Contains(p.body, "no verified email") || strings.Contains(p.body, "user-email") {
		t.Fatal("an unverified email must be refused")
	}
	_, p = signIn(&mockoidc.MockUser{Subject: "3", Email: "out@elsewhere.io", EmailVerified: true}, "/")
	if !strings.Contains(p.body, "may not sign in here") {
		t.Fatal("a domain that is not allowed must be refused")
	}
	admin := f.signIn(t, "boss@example.com")
	admin.post("/admin/allowlist", url.Values{"kind": {"email"}, "value": {"out@elsewhere.io"}})
	_, p = signIn(&mockoidc.MockUser{Subject: "3", Email: "out@elsewhere.io", EmailVerified: true}, "/")
	if !strings.Contains(p.body, `id="user-email">out@elsewhere.io`) {
		t.Fatal("an allow-listed address must be admitted")
	}
	// A callback with a state that is not this browser's is refused.
	evil := f.browser(t)
	evil.get("/login/google")
	if p := evil.follow(evil.get("/auth/callback?code=x&state=forged")); strings.Contains(p.body, "user-email") {
		t.Fatal("a forged state must not sign in")
	}
	// Open redirects are refused.
	_, p = signIn(&mockoidc.MockUser{Subject: "1", Email: "zoe@example.com", EmailVerified: true}, "//evil.example/")
	if !strings.Contains(p.body, "Dashboard") {
		t.Fatal("next must stay on this site")
	}
}

// TestPasswordSignIn: setup link by email, policy, single use, neutral answers, rate limit,
// reset ending other sessions.
func TestPasswordSignIn(t *testing.T) {
	f := newWebFixture(t, webOptions{})
	admin := f.signIn(t, "boss@example.com")
	admin.post("/admin/allowlist", url.Values{"kind": {"email"}, "value": {"ext@partner.io"}})

	anon := f.browser(t)
	anon.get("/login")
	neutral := anon.follow(anon.post("/auth/request-access", url.Values{"email": {"nobody@partner.io"}})).body
	p := anon.do("POST", "/auth/request-access", url.Values{"email": {"ext@partner.io"}, "csrf_token": {anon.csrf}}, "Host", "evil.example")
	if !strings.Contains(anon.follow(p).body, "If this address may use this portal") || !strings.Contains(neutral, "If this address may use this portal") {
		t.Fatal("request-access must answer neutrally")
	}
	msg := f.mail.next(t)
	if !strings.Contains(msg, "To: <ext@partner.io>") || !strings.Contains(msg, "Subject: Set up your Portal <Test> account") {
		t.Fatalf("setup mail: %s", msg)
	}
	link := regexp.MustCompile(regexp.QuoteMeta(f.url) + `/auth/setup/[A-Za-z0-9_-]{43}`).FindString(msg)
	if link == "" || strings.Contains(msg, "evil.example") {
		t.Fatalf("the link must be built from public_url, never the Host header: %s", msg)
	}
	select {
	case m := <-f.mail.msgs:
		t.Fatalf("no mail may go to an address that is not allowed: %s", m)
	case <-time.After(200 * time.Millisecond):
	}

	b := f.browser(t)
	if p := b.get(link); p.code != 200 || !strings.Contains(p.body, "ext@partner.io") {
		t.Fatalf("setup page: %d", p.code)
	}
	if p := b.post(link, url.Values{"password": {"short1A"}, "confirm_password": {"short1A"}}); p.code != 400 || !strings.Contains(p.body, "at least 8") {
		t.Fatalf("weak password: %d", p.code)
	}
	if p := b.post(link, url.Values{"password": {"Longer1pass"}, "confirm_password": {"Longer1pasS"}}); !strings.Contains(p.body, "do not match") {
		t.Fatal("mismatch")
	}
	p = b.follow(b.post(link, url.Values{"name": {"Ext"}, "password": {" Longer1pass "}, "confirm_password": {" Longer1pass "}}))
	if !strings.Contains(p.body, `id="user-email">ext@partner.io`) {
		t.Fatalf("setting the password signs in: %d", p.code)
	}
	if p := f.browser(t).get(link); p.code != 400 {
		t.Fatalf("a setup link works once: %d", p.code)
	}

	login := func(pw string) page {
		c := f.browser(t)
		c.get("/login")
		return c.follow(c.post("/login/email", url.Values{"email": {"EXT@partner.io"}, "password": {pw}}))
	}
	if p := login(" Longer1pass "); !strings.Contains(p.body, `id="user-email">ext@partner.io`) {
		t.Fatal("sign-in with the password (spaces are part of it)")
	}
	wrong := login("Wrong1pass")
	unknown := func() string {
		c := f.browser(t)
		c.get("/login")
		return c.follow(c.post("/login/email", url.Values{"email": {"ann@example.com"}, "password": {"Whatever1"}})).body
	}()
	if !strings.Contains(wrong.body, "Invalid email or password.") || !strings.Contains(unknown, "Invalid email or password.") {
		t.Fatal("wrong password and unknown account must get the same message")
	}
	for i := 0; i < 4; i++ {
		login("Wrong1pass")
	}
	if p := login(" Longer1pass "); !strings.Contains(p.body, "Too many attempts") {
		t.Fatal("five failures in a minute must block the address, even with the right password")
	}

	// A reset ends the sessions opened before it.
	anon.post("/auth/reset-request", url.Values{"email": {"ext@partner.io"}})
	msg = f.mail.next(t)
	reset := regexp.MustCompile(regexp.QuoteMeta(f.url) + `/auth/reset/[A-Za-z0-9_-]{43}`).FindString(msg)
	if reset == "" || !strings.Contains(msg, "expires in 1 hour") {
		t.Fatalf("reset mail: %s", msg)
	}
	r := f.browser(t)
	r.get(reset)
	r.post(reset, url.Values{"password": {"Brandnew2pass"}, "confirm_password": {"Brandnew2pass"}})
	if p := b.get("/"); p.code != http.StatusSeeOther {
		t.Fatalf("the session from before the reset must end: %d", p.code)
	}
	if p := r.get("/"); p.code != 200 {
		t.Fatalf("the reset signs in: %d", p.code)
	}
}

// TestPagesShowDataEscaped: the dashboard and catalog show the tables a user may see, with
// every value escaped; datasets honour requires.
func TestPagesShowDataEscaped(t *testing.T) {
	f := newWebFixture(t, webOptions{})
	ann := f.signIn(t, "ann@example.com")
	p := ann.get("/catalog")
	if strings.Contains(p.body, "<script>alert") || !strings.Contains(p.body, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") {
		t.Fatalf("the description must be escaped: %s", p.body)
	}
	if strings.Contains(p.body, "salaries") || ann.get("/catalog/salaries").code != 404 {
		t.Fatal("an analyst must not see a private table")
	}
	if p := f.signIn(t, "pat@example.com").get("/catalog/salaries"); p.code != 200 {
		t.Fatalf("privileged: %d", p.code)
	}
	if p := ann.get("/"); !strings.Contains(p.body, `id="setup"`) || !strings.Contains(p.body, "Get started") {
		t.Fatal("a new user sees the setup steps")
	}
	p = ann.post("/account/token", nil)
	tok := regexp.MustCompile(`ada_[A-Za-z0-9_-]{43}`).FindString(p.body)
	if tok == "" || !strings.Contains(p.body, "analyst pull --server "+f.url+" --token "+tok) {
		t.Fatalf("token page: %s", p.body)
	}
	if p := ann.get("/"); strings.Contains(p.body, `id="setup"`) {
		t.Fatal("setup steps disappear once the user has a token")
	}
	if p := ann.follow(ann.post("/catalog/datasets", url.Values{"dataset": {"attribution"}, "on": {"1"}})); !strings.Contains(p.body, "requires Marketing") {
		t.Fatal("a dataset whose requirement is off cannot be switched on")
	}
	ann.post("/catalog/datasets", url.Values{"dataset": {"marketing"}, "on": {"1"}})
	ann.post("/catalog/datasets", url.Values{"dataset": {"attribution"}, "on": {"1"}})
	if u, _ := f.users.Get("ann@example.com"); !u.Datasets["marketing"] || !u.Datasets["attribution"] {
		t.Fatalf("datasets: %v", u.Datasets)
	}
	if p := ann.follow(ann.post("/catalog/datasets", url.Values{"dataset": {"marketing"}, "on": {"0"}})); !strings.Contains(p.body, "switch Attribution off first") {
		t.Fatal("a dataset others require cannot be switched off")
	}
	if p := ann.get("/theme.css"); !strings.Contains(p.body, "--primary: #112233") {
		t.Fatalf("theme: %s", p.body)
	}
}

// TestHealthAndMetrics: the admin-only operational endpoints.
func TestHealthAndMetrics(t *testing.T) {
	f := newWebFixture(t, webOptions{})
	admin := f.signIn(t, "boss@example.com")
	p := admin.get("/health")
	var h struct {
		Status string
		Store  struct{ Healthy bool }
		Disk   []struct {
			Path        string
			UsedPercent float64 `json:"used_percent"`
			TotalBytes  uint64  `json:"total_bytes"`
		}
		Schedules []struct{ Table, Schedule string }
	}
	if err := json.Unmarshal([]byte(p.body), &h); err != nil {
		t.Fatal(err, p.body)
	}
	if !h.Store.Healthy || len(h.Disk) == 0 || h.Disk[0].TotalBytes == 0 || len(h.Schedules) != 1 || h.Schedules[0].Table != "orders" {
		t.Fatalf("health: %s", p.body)
	}
	if (h.Status == "healthy") != (p.code == 200) {
		t.Fatalf("status %s with code %d", h.Status, p.code)
	}
	p = admin.get("/metrics")
	for _, want := range []string{`analyst_http_requests_total{code="200",method="GET",route="/health"} 1`, `analyst_runs{status="failed"} 0`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// smtpSink is a minimal SMTP server that keeps what it receives.
type smtpSink struct {
	addr string
	msgs chan string
}

func newSMTPSink(t *testing.T) *smtpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{addr: ln.Addr().String(), msgs: make(chan string, 10)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(conn) }()
		}
	}()
	return s
}

func (s *smtpSink) serve(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	reply := func(l string) { fmt.Fprintf(conn, "%s\r\n", l) }
	reply("220 sink ready")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
		case "EHLO", "HELO":
			reply("250 sink")
		case "DATA":
			reply("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.msgs <- b.String()
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}

func (s *smtpSink) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no mail arrived")
		return ""
	}
}

// The admin page shows the Jira intake and its last consistency report.
func TestAdminShowsJiraConsistency(t *testing.T) {
	f := newWebFixture(t, webOptions{})
	admin := f.signIn(t, "boss@example.com")
	if p := admin.get("/admin"); !strings.Contains(p.body, "acme.atlassian.net") || !strings.Contains(p.body, "No consistency check has run yet") {
		t.Fatalf("before a check: %s", p.body)
	}
	if p := admin.get("/admin"); !strings.Contains(p.body, "none yet") {
		t.Fatalf("no webhook has arrived yet: %s", p.body)
	}
	writeFile(t, f.cfg.Paths.Home, "data/raw/jira/issues/SUP-1.json", `{"key":"SUP-1"}`)
	writeFile(t, f.cfg.Paths.Home, "data/raw/jira/_consistency_report.json",
		`{"timestamp":"2026-11-28T10:00:00Z","check_type":"incremental","max_age_days":30,"counts":{"jira_api":120,"raw_json":118,"parquet":117},"discrepancies":{"missing_in_json":["A-1","A-2"],"missing_in_parquet":["A-3"],"not_in_jira":[]}}`)
	p := admin.get("/admin")
	if strings.Contains(p.body, "none yet") {
		t.Fatalf("the stored issue must count as the last webhook: %s", p.body)
	}
	for _, want := range []string{"Jira 120, raw 118, Parquet 117", "2 missing in raw, 1 missing in Parquet, 0 no longer in Jira"} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("the report is not shown (%q): %s", want, p.body)
		}
	}
}

// TestCachedPagesAreNeverShared: the dashboard and catalogue bodies are cached per role and
// visible tables, but each user still gets only what they may see, with their own CSRF token,
// and sees changes at once (their own) or within a second (the pipeline's).
func TestCachedPagesAreNeverShared(t *testing.T) {
	f := newWebFixture(t, webOptions{})
	f.users.Add("kim@example.com", store.RolePrivileged)
	f.users.Add("bea@example.com", store.RoleAdmin)
	f.users.Add("ivy@example.com", store.RoleAnalyst)
	f.users.Grant("salaries", "ivy@example.com") // an analyst like ann, who sees one table more
	ann, pat, kim := f.signIn(t, "ann@example.com"), f.signIn(t, "pat@example.com"), f.signIn(t, "kim@example.com")
	ivy := f.signIn(t, "ivy@example.com")
	placeholder := regexp.MustCompile(`csrf-[0-9a-f]{32}`)
	formTokens := regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)
	for i := 0; i < 2; i++ { // the second round is served from the cache
		for _, b := range []*browser{pat, kim, ivy, ann} {
			p := b.get("/catalog")
			if want := b != ann; strings.Contains(p.body, `href="/catalog/salaries"`) != want {
				t.Fatalf("round %d: private table listed = %v, want %v", i, !want, want)
			}
			if placeholder.MatchString(p.body) {
				t.Fatal("the CSRF placeholder reached a page")
			}
			for _, m := range formTokens.FindAllStringSubmatch(b.get("/").body, -1) {
				if m[1] != b.csrf {
					t.Fatalf("a form carries CSRF token %q, not the session's %q", m[1], b.csrf)
				}
			}
		}
	}
	if pat.csrf == kim.csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	if p := kim.get("/"); !strings.Contains(p.body, `id="user-email">kim@example.com`) || strings.Contains(p.body, "pat@example.com") {
		t.Fatal("a cached page shows another user's identity")
	}

	// A role change takes effect on the next page, cache or not.
	f.users.Update("ann@example.com", func(u *store.User) error { u.Role = store.RolePrivileged; return nil })
	if p := ann.get("/catalog"); !strings.Contains(p.body, `href="/catalog/salaries"`) {
		t.Fatal("the new role's tables are not listed")
	}

	// A run failing in the pipeline (no request to the portal) shows within a second or so.
	boss := f.signIn(t, "bea@example.com")
	boss.get("/")
	run, _ := f.runs.Create("run-failed-later", "schedule", []string{"orders"})
	f.runs.Update(run.RunID, func(r *store.Run) {
		r.Status = store.RunFailed
		r.Tables[0].Status, r.Tables[0].Error = store.RunFailed, "source unreachable"
	})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(boss.get("/").body, "source unreachable") {
		if time.Now().After(deadline) {
			t.Fatal("the failed run never showed on the dashboard")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
