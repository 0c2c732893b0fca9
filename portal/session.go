package portal

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/ai-data-analyst/analyst/store"
)

// The portal's cookie holds, encrypted (AES-256) and signed (HMAC-SHA256): the id of the
// server-side session once signed in, the CSRF token, flash messages and the short-lived state
// of a Google sign-in. The server-side record is what makes a session valid: sign-out, a
// disabled user or an expired record ends it whatever the cookie says.
const (
	cookieName = "analyst_session"

	keySession = "sid"
	keyCSRF    = "csrf"

	defaultSessionTTL = 12 * time.Hour // absolute: sign in again after this
	defaultIdleTTL    = 2 * time.Hour  // idle: a session unused this long ends
	touchEvery        = time.Minute    // last-seen is written at most this often
)

type viaCookieKey struct{}

// newCookieStore builds the cookie codec from auth.webapp_secret_key, or from a random secret
// kept in the store when none is configured (never a known default).
func (s *server) newCookieStore() *sessions.CookieStore {
	var secret []byte
	if k := s.Config.Instance.Auth.WebappSecretKey; k != "" {
		secret = []byte(k)
	} else {
		var err error
		if secret, err = s.sessions.Secret("cookie", 64); err != nil {
			s.Logger.Error("cookie secret", "error", err)
		}
	}
	derive := func(label string) []byte {
		sum := sha256.Sum256(append([]byte(label+"\x00"), secret...))
		return sum[:]
	}
	hashKey := append(derive("analyst cookie hmac 1"), derive("analyst cookie hmac 2")...)
	cs := sessions.NewCookieStore(hashKey, derive("analyst cookie aes"))
	for _, codec := range cs.Codecs {
		if sc, ok := codec.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(cookieSerializer{})
		}
	}
	cs.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(s.sessionTTL / time.Second),
		HttpOnly: true,
		Secure:   !s.insecureCookies(),
		SameSite: http.SameSiteLaxMode,
	}
	cs.MaxAge(cs.Options.MaxAge)
	return cs
}

// insecureCookies is true only in explicit dev mode on a loopback (or unset) public URL.
func (s *server) insecureCookies() bool {
	dev := s.DevMode
	if v, ok := s.Config.LookupEnv("ANALYST_DEV"); ok && (v == "1" || v == "true") {
		dev = true
	}
	if !dev {
		return false
	}
	pub := s.Config.Instance.Instance.PublicURL
	if pub == "" {
		return true
	}
	u, err := url.Parse(pub)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
		return true
	}
	s.Logger.Warn("dev mode ignored: public_url is not on localhost; cookies stay Secure", "public_url", pub)
	return false
}

// cookie returns the request's portal cookie session (a fresh one when missing or invalid).
func (s *server) cookie(r *http.Request) *sessions.Session {
	// A tampered cookie, or one from an old key, decodes to an empty session that replaces it
	// when saved. The session is cached for the request, so every caller shares it.
	sess, _ := s.cookies.Get(r, cookieName)
	return sess
}

// sessionUser resolves the cookie to its signed-in, enabled user; expired or revoked sessions
// give nil.
func (s *server) sessionUser(r *http.Request) *store.User {
	if !s.web() {
		return nil
	}
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	sid, _ := s.cookie(r).Values[keySession].(string)
	if sid == "" {
		return nil
	}
	rec, err := s.sessions.Get(sid)
	if err != nil {
		return nil
	}
	now := time.Now()
	if now.Sub(rec.Created) > s.sessionTTL || now.Sub(rec.LastSeen) > s.idleTTL {
		s.sessions.Delete(sid)
		return nil
	}
	user, err := s.Users.Get(rec.Email)
	if err != nil || user.Disabled {
		return nil
	}
	if now.Sub(rec.LastSeen) > touchEvery {
		if err := s.sessions.Touch(sid, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.Logger.Warn("session touch", "error", err)
		}
	}
	return user
}

// viaCookie reports whether the request was authenticated by the session cookie (and so needs
// a CSRF token to change anything).
func viaCookie(ctx context.Context) bool { v, _ := ctx.Value(viaCookieKey{}).(bool); return v }

// signIn starts a server-side session for user and puts its id in a renewed cookie (a new CSRF
// token too, against session fixation).
func (s *server) signIn(w http.ResponseWriter, r *http.Request, user *store.User, method string) error {
	sid, _, err := s.sessions.Create(user.Email, method)
	if err != nil {
		return err
	}
	c := s.cookie(r)
	next, _ := c.Values["next"].(string)
	flashes := c.Flashes()
	c.Values = map[any]any{keySession: sid, keyCSRF: newCSRFToken()}
	if next != "" {
		c.Values["next"] = next
	}
	for _, f := range flashes {
		c.AddFlash(f)
	}
	s.Logger.Info("signed in", "user", user.Email, "method", method)
	return c.Save(r, w)
}

// signOut revokes the server-side session and empties the cookie.
func (s *server) signOut(w http.ResponseWriter, r *http.Request) {
	c := s.cookie(r)
	if sid, _ := c.Values[keySession].(string); sid != "" {
		if err := s.sessions.Delete(sid); err != nil {
			s.Logger.Error("sign out", "error", err)
		}
	}
	c.Values = map[any]any{keyCSRF: newCSRFToken()}
	c.AddFlash(flash{Kind: "info", Text: "You have been signed out."})
	c.Save(r, w)
}

// flash is a one-time message shown at the top of the next page.
type flash struct {
	Kind string // info, success, error
	Text string
}

func (s *server) flash(w http.ResponseWriter, r *http.Request, kind, text string) {
	c := s.cookie(r)
	c.AddFlash(flash{Kind: kind, Text: text})
	if err := c.Save(r, w); err != nil {
		s.Logger.Error("save flash", "error", err)
	}
}

// safeNext keeps only local paths as a place to return to after sign-in (no open redirect).
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}
