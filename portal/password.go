package portal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/alexedwards/argon2id"
	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/store"
)

// Email + password sign-in for allow-listed external users. Passwords are hashed with argon2id
// (t=3, m=64 MiB, p=4) and rehashed when the parameters change; setup (24 h) and reset (1 h)
// links are single use and stored hashed, built from instance.public_url. Messages never say
// whether an address is allowed or has an account. Attempts are rate-limited per address and
// per client across the whole process.

var argonParams = &argon2id.Params{Memory: 64 * 1024, Iterations: 3, Parallelism: 4, SaltLength: 16, KeyLength: 32}

const (
	setupTTL = 24 * time.Hour
	resetTTL = time.Hour

	msgBadLogin   = "Invalid email or password."
	msgTooMany    = "Too many attempts. Please wait a minute and try again."
	msgLinkSent   = "If this address may use this portal, we have sent it a link. Check your inbox."
	msgLinkBroken = "This link is invalid or was already used. Request a new one."
	msgLinkOld    = "This link has expired. Request a new one."
)

// hashSlots bounds concurrent argon2id work (64 MiB each) on a small machine.
var hashSlots = make(chan struct{}, 2)

func hashPassword(pw string) (string, error) {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2id.CreateHash(pw, argonParams)
}

// checkPassword compares pw with a PHC hash; rehash is true when the hash uses other
// parameters than today's.
func checkPassword(pw, hash string) (ok, rehash bool, err error) {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	ok, params, err := argon2id.CheckHash(pw, hash)
	if err != nil {
		return false, false, err
	}
	return ok, ok && *params != *argonParams, nil
}

// dummyHash is compared against when an address has no password, so that answers take as long
// as for a real account.
var dummyHash = sync.OnceValue(func() string {
	h, _ := argon2id.CreateHash("not a password", argonParams)
	return h
})

// passwordProblem applies the reference's policy: at least 8 characters, an upper-case letter,
// a lower-case letter and a digit. Passwords are never trimmed.
func passwordProblem(pw, confirm string) string {
	var upper, lower, digit bool
	for _, r := range pw {
		upper = upper || unicode.IsUpper(r)
		lower = lower || unicode.IsLower(r)
		digit = digit || unicode.IsDigit(r)
	}
	switch {
	case len([]rune(pw)) < 8:
		return "The password needs at least 8 characters."
	case len(pw) > 256:
		return "The password may have at most 256 characters."
	case !upper:
		return "The password needs an upper-case letter."
	case !lower:
		return "The password needs a lower-case letter."
	case !digit:
		return "The password needs a digit."
	case pw != confirm:
		return "Passwords do not match."
	}
	return ""
}

func (s *server) passwordLogin(w http.ResponseWriter, r *http.Request) {
	email, _ := store.NormalizeEmail(r.PostFormValue("email"))
	pw := r.PostFormValue("password")
	ip := clientIP(r)
	if !s.limits.allow("login:"+email, 5, time.Minute) || !s.limits.allow("login-ip:"+ip, 30, time.Minute) {
		s.redirectFlash(w, r, "/login", "error", msgTooMany)
		return
	}
	failed := func(reason string) {
		s.limits.hit("login:" + email)
		s.limits.hit("login-ip:" + ip)
		s.Logger.Info("password sign-in refused", "user", email, "reason", reason)
		s.redirectFlash(w, r, "/login", "error", msgBadLogin)
	}
	hash := dummyHash()
	rec, err := s.passwords.Get(email)
	known := err == nil && email != "" && s.admitted(email)
	if known {
		hash = rec.Hash
	}
	ok, rehash, err := checkPassword(pw, hash)
	if err != nil {
		s.Logger.Error("stored password hash unreadable", "user", email, "error", err)
	}
	if !known || !ok {
		failed("unknown address or wrong password")
		return
	}
	user, err := s.Users.Get(email)
	if err != nil || user.Disabled {
		failed("no enabled user")
		return
	}
	s.limits.reset("login:" + email)
	newHash := ""
	if rehash {
		newHash, _ = hashPassword(pw)
	}
	if err := s.passwords.RecordLogin(email, newHash); err != nil {
		s.Logger.Error("record sign-in", "user", email, "error", err)
	}
	if err := s.signIn(w, r, user, "password"); err != nil {
		s.fail(w, err)
		return
	}
	http.Redirect(w, r, s.takeNext(w, r), http.StatusSeeOther)
}

// requestAccess sends a setup link to an allowed address without a password (a reset link
// when it has one); resetRequest sends a reset link. Both answer the same whatever happened.
func (s *server) requestAccess(w http.ResponseWriter, r *http.Request) { s.sendLink(w, r, false) }
func (s *server) resetRequest(w http.ResponseWriter, r *http.Request)  { s.sendLink(w, r, true) }

func (s *server) sendLink(w http.ResponseWriter, r *http.Request, reset bool) {
	email, err := store.NormalizeEmail(r.PostFormValue("email"))
	ip := clientIP(r)
	if !s.limits.allow("mail:"+email, 3, time.Hour) || !s.limits.allow("mail-ip:"+ip, 10, time.Hour) {
		s.redirectFlash(w, r, "/login", "info", msgLinkSent) // neutral, also when limited
		return
	}
	s.limits.hit("mail:" + email)
	s.limits.hit("mail-ip:" + ip)
	if err == nil && s.admitted(email) && s.baseURL() != "" {
		_, perr := s.passwords.Get(email)
		hasPassword := perr == nil
		if u, uerr := s.Users.Get(email); uerr == nil && u.Disabled {
			s.Logger.Info("no link for a disabled user", "user", email)
		} else if reset || hasPassword {
			if hasPassword {
				s.mailLink(email, store.LinkReset)
			}
		} else {
			s.mailLink(email, store.LinkSetup)
		}
	} else if s.baseURL() == "" {
		s.Logger.Error("cannot send sign-in links", "error", errNoBaseURL)
	}
	s.redirectFlash(w, r, "/login", "info", msgLinkSent)
}

// mailLink creates a setup or reset link and sends it in the background, so the answer takes
// the same time whether or not a mail goes out.
func (s *server) mailLink(email, purpose string) {
	ttl, subject, what, valid := setupTTL, "Set up your %s account", "set your password", "24 hours"
	if purpose == store.LinkReset {
		ttl, subject, what, valid = resetTTL, "Reset your %s password", "choose a new password", "1 hour"
	}
	token, err := s.links.Create(email, purpose, ttl)
	if err != nil {
		s.Logger.Error("create link", "user", email, "error", err)
		return
	}
	link := s.baseURL() + "/auth/" + purpose + "/" + token
	name := s.Config.Instance.Instance.Name
	m := Mail{
		To:      email,
		Subject: fmt.Sprintf(subject, name),
		Text: fmt.Sprintf("Hello,\n\nopen this link to %s for %s:\n\n%s\n\nThe link works once and expires in %s. "+
			"If you did not ask for it, ignore this email.\n", what, name, link, valid),
		HTML: mailHTML(name, what, link, valid),
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Mailer.Send(ctx, m); err != nil {
			s.Logger.Error("send email", "to", email, "purpose", purpose, "error", err)
			return
		}
		s.Logger.Info("email sent", "to", email, "purpose", purpose)
	}()
}

type passwordView struct {
	Purpose, Email, Token, Error string
}

// passwordForm serves the setup and reset pages: GET shows the form, POST sets the password,
// uses up the link, ends the user's other sessions and signs them in.
func (s *server) passwordForm(purpose string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := mux.Vars(r)["token"]
		ip := clientIP(r)
		if !s.limits.allow("link-ip:"+ip, 30, time.Minute) {
			s.renderError(w, r, http.StatusTooManyRequests, msgTooMany)
			return
		}
		link, err := s.links.Check(token, purpose)
		if err != nil {
			s.limits.hit("link-ip:" + ip)
			msg := msgLinkBroken
			if errors.Is(err, store.ErrExpired) {
				msg = msgLinkOld
			}
			s.renderError(w, r, http.StatusBadRequest, msg)
			return
		}
		v := passwordView{Purpose: purpose, Email: link.Email, Token: token}
		if r.Method == http.MethodGet {
			s.render(w, r, http.StatusOK, "password", "Set your password", v)
			return
		}
		pw := r.PostFormValue("password")
		if v.Error = passwordProblem(pw, r.PostFormValue("confirm_password")); v.Error != "" {
			s.render(w, r, http.StatusBadRequest, "password", "Set your password", v)
			return
		}
		if _, err := s.links.Consume(token, purpose); err != nil {
			s.renderError(w, r, http.StatusBadRequest, msgLinkBroken)
			return
		}
		hash, err := hashPassword(pw)
		if err != nil {
			s.fail(w, err)
			return
		}
		if err := s.passwords.Set(link.Email, hash); err != nil {
			s.fail(w, err)
			return
		}
		if n, err := s.sessions.DeleteUser(link.Email); err != nil {
			s.Logger.Error("end sessions after password change", "user", link.Email, "error", err)
		} else if n > 0 {
			s.Logger.Info("ended sessions after password change", "user", link.Email, "sessions", n)
		}
		user, err := s.userFor(link.Email, strings.TrimSpace(r.PostFormValue("name")))
		if err != nil {
			s.renderError(w, r, http.StatusForbidden, "This account may not sign in.")
			return
		}
		if err := s.signIn(w, r, user, "password"); err != nil {
			s.fail(w, err)
			return
		}
		s.redirectFlash(w, r, "/", "success", "Your password is set.")
	}
}

// limiter counts events per key in a sliding window, for the whole process.
type limiter struct {
	mu   sync.Mutex
	hits map[string][]time.Time
}

const limiterHorizon = time.Hour // the longest window in use

func newLimiter() *limiter { return &limiter{hits: map[string][]time.Time{}} }

// allow reports whether key has had fewer than n events in the last per.
func (l *limiter) allow(key string, n int, per time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	since, count := time.Now().Add(-per), 0
	for _, t := range l.hits[key] {
		if t.After(since) {
			count++
		}
	}
	return count < n
}

func (l *limiter) hit(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.hits) > 10000 { // drop keys with nothing left in the horizon
		for k, ts := range l.hits {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) > limiterHorizon {
				delete(l.hits, k)
			}
		}
	}
	ts := l.hits[key]
	for len(ts) > 0 && now.Sub(ts[0]) > limiterHorizon {
		ts = ts[1:]
	}
	l.hits[key] = append(ts, now)
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.hits, key)
}

// clientIP is the peer address; a reverse proxy in front should be the only peer, so
// forwarded headers are not trusted here.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
