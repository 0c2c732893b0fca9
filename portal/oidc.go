package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ai-data-analyst/analyst/store"
)

// Google sign-in as OpenID Connect: discovery, state, nonce and PKCE; the ID token is verified
// by go-oidc (signature, issuer, audience, expiry) and the nonce by us. A user is admitted when
// the provider says the email is verified and its domain is allowed (auth.allowed_domains or a
// domain on the portal's allow-list) or the address itself is allow-listed.

const (
	defaultIssuer = "https://accounts.google.com"
	oidcTTL       = 10 * time.Minute // how long a started sign-in may take
	callbackPath  = "/auth/callback"
)

// oidcClient discovers the provider on first use (so the server starts without network) and
// keeps it.
type oidcClient struct {
	s        *server
	mu       sync.Mutex
	provider *oidc.Provider
}

func (o *oidcClient) enabled() bool {
	a := o.s.Config.Instance.Auth
	return a.GoogleClientID != "" && a.GoogleClientSecret != ""
}

func (o *oidcClient) issuer() string {
	if o.s.OIDCIssuer != "" {
		return o.s.OIDCIssuer
	}
	return defaultIssuer
}

func (o *oidcClient) config(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		p, err := oidc.NewProvider(ctx, o.issuer())
		if err != nil {
			return nil, nil, fmt.Errorf("discover %s: %w", o.issuer(), err)
		}
		o.provider = p
	}
	a := o.s.Config.Instance.Auth
	cfg := &oauth2.Config{
		ClientID: a.GoogleClientID, ClientSecret: a.GoogleClientSecret,
		Endpoint:    o.provider.Endpoint(),
		RedirectURL: o.s.baseURL() + callbackPath,
		Scopes:      []string{oidc.ScopeOpenID, "email", "profile"},
	}
	return cfg, o.provider.Verifier(&oidc.Config{ClientID: a.GoogleClientID}), nil
}

// googleStart sends the browser to the provider.
func (s *server) googleStart(w http.ResponseWriter, r *http.Request) {
	if !s.oidc.enabled() || s.baseURL() == "" {
		s.redirectFlash(w, r, "/login", "error", "Google sign-in is not configured on this instance.")
		return
	}
	cfg, _, err := s.oidc.config(r.Context())
	if err != nil {
		s.Logger.Error("google sign-in", "error", err)
		s.redirectFlash(w, r, "/login", "error", "Google sign-in is unavailable right now. Please try again.")
		return
	}
	state, nonce, verifier := newCSRFToken(), newCSRFToken(), oauth2.GenerateVerifier()
	c := s.cookie(r)
	c.Values["oidc_state"], c.Values["oidc_nonce"], c.Values["oidc_verifier"] = state, nonce, verifier
	c.Values["oidc_started"] = time.Now().Unix()
	c.Values["next"] = safeNext(r.URL.Query().Get("next"))
	if err := c.Save(r, w); err != nil {
		s.fail(w, err)
		return
	}
	http.Redirect(w, r, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("prompt", "select_account")), http.StatusFound)
}

// googleCallback finishes the sign-in.
func (s *server) googleCallback(w http.ResponseWriter, r *http.Request) {
	fail := func(msg string, err error) {
		if err != nil {
			s.Logger.Warn("google sign-in failed", "error", err)
		}
		s.redirectFlash(w, r, "/login", "error", msg)
	}
	c := s.cookie(r)
	state, _ := c.Values["oidc_state"].(string)
	nonce, _ := c.Values["oidc_nonce"].(string)
	verifier, _ := c.Values["oidc_verifier"].(string)
	started, _ := c.Values["oidc_started"].(int64)
	for _, k := range []string{"oidc_state", "oidc_nonce", "oidc_verifier", "oidc_started"} {
		delete(c.Values, k) // one use
	}
	c.Save(r, w)
	if q := r.URL.Query(); q.Get("error") != "" {
		fail("Google sign-in was cancelled or refused.", errors.New(q.Get("error")))
		return
	}
	if state == "" || r.URL.Query().Get("state") != state || time.Since(time.Unix(started, 0)) > oidcTTL {
		fail("The sign-in took too long or came from another window. Please try again.", errors.New("state mismatch or expired"))
		return
	}
	cfg, verify, err := s.oidc.config(r.Context())
	if err != nil {
		fail("Google sign-in is unavailable right now. Please try again.", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := cfg.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		fail("Authentication failed. Please try again.", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verify.Verify(ctx, raw)
	if err != nil {
		fail("Authentication failed. Please try again.", err)
		return
	}
	if idt.Nonce != nonce {
		fail("Authentication failed. Please try again.", errors.New("nonce mismatch"))
		return
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		fail("Authentication failed. Please try again.", err)
		return
	}
	email, err := store.NormalizeEmail(claims.Email)
	if err != nil || !claims.EmailVerified {
		fail("Your Google account has no verified email address.", fmt.Errorf("email %q verified=%v", claims.Email, claims.EmailVerified))
		return
	}
	if !s.admitted(email) {
		fail("This account may not sign in here. Ask an administrator to add it.", fmt.Errorf("%s not admitted", email))
		return
	}
	user, err := s.userFor(email, claims.Name)
	if err != nil {
		fail("This account may not sign in here. Ask an administrator to add it.", err)
		return
	}
	if err := s.signIn(w, r, user, "google"); err != nil {
		s.fail(w, err)
		return
	}
	http.Redirect(w, r, s.takeNext(w, r), http.StatusSeeOther)
}

// admitted: the domain is allowed (config or portal allow-list) or the address is allow-listed.
func (s *server) admitted(email string) bool {
	domain := email[strings.LastIndex(email, "@")+1:]
	for _, d := range s.Config.Instance.Auth.Domains() {
		if d == domain {
			return true
		}
	}
	return s.allow.Has(store.AllowDomain, domain) || s.allow.Has(store.AllowEmail, email)
}

// userFor returns the enabled user for email, creating an analyst on first sign-in.
func (s *server) userFor(email, name string) (*store.User, error) {
	user, err := s.Users.Get(email)
	if errors.Is(err, store.ErrNotFound) {
		if user, err = s.Users.Add(email, store.RoleAnalyst); err != nil {
			return nil, err
		}
		if name != "" {
			user, err = s.Users.Update(email, func(u *store.User) error { u.Name = name; return nil })
		}
		s.Logger.Info("new user on first sign-in", "user", email)
	}
	if err != nil {
		return nil, err
	}
	if user.Disabled {
		return nil, fmt.Errorf("user %s is disabled", email)
	}
	return user, nil
}

// takeNext returns (and forgets) the page the user asked for before signing in.
func (s *server) takeNext(w http.ResponseWriter, r *http.Request) string {
	c := s.cookie(r)
	next, _ := c.Values["next"].(string)
	delete(c.Values, "next")
	c.Save(r, w)
	return safeNext(next)
}
