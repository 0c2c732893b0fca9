package portal

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/store"
)

const loginLinkTTL = 10 * time.Minute

// authRoutes are the sign-in pages and flows; all of them are public.
func (s *server) authRoutes(r *mux.Router) {
	r.HandleFunc("/login", s.loginPage).Methods(http.MethodGet)
	r.HandleFunc("/login/google", s.googleStart).Methods(http.MethodGet)
	r.HandleFunc(callbackPath, s.googleCallback).Methods(http.MethodGet)
	r.HandleFunc("/login/email", s.passwordLogin).Methods(http.MethodPost)
	r.HandleFunc("/auth/request-access", s.requestAccess).Methods(http.MethodPost)
	r.HandleFunc("/auth/reset-request", s.resetRequest).Methods(http.MethodPost)
	r.HandleFunc("/auth/setup/{token}", s.passwordForm(store.LinkSetup)).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/auth/reset/{token}", s.passwordForm(store.LinkReset)).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/login/link/{token}", s.loginLink).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/logout", s.logout).Methods(http.MethodPost)
}

type loginView struct {
	Google  bool
	Next    string
	Domains []string
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if UserFrom(r.Context()) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if next != "/" { // remembered for the password and link flows too
		c := s.cookie(r)
		c.Values["next"] = next
		c.Save(r, w)
	}
	s.render(w, r, http.StatusOK, "login", "Sign in", loginView{
		Google: s.oidc.enabled(), Next: next, Domains: s.Config.Instance.Auth.Domains(),
	})
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	s.signOut(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// loginLink opens a session from a single-use link: GET shows a button (so that link
// previews in chat tools do not use it up), POST signs in.
func (s *server) loginLink(w http.ResponseWriter, r *http.Request) {
	token := mux.Vars(r)["token"]
	if !s.limits.allow("link-ip:"+clientIP(r), 30, time.Minute) {
		s.renderError(w, r, http.StatusTooManyRequests, "Too many attempts. Please wait a minute and try again.")
		return
	}
	check := s.links.Check
	if r.Method == http.MethodPost {
		check = s.links.Consume
	}
	link, err := check(token, store.LinkLogin)
	if err != nil {
		s.limits.hit("link-ip:" + clientIP(r))
		msg := "This sign-in link is invalid or was already used. Ask for a new one."
		if errors.Is(err, store.ErrExpired) {
			msg = "This sign-in link has expired. Ask for a new one."
		}
		s.renderError(w, r, http.StatusBadRequest, msg)
		return
	}
	if r.Method == http.MethodGet {
		s.render(w, r, http.StatusOK, "link", "Sign in", link.Email)
		return
	}
	user, err := s.Users.Get(link.Email)
	if err != nil || user.Disabled {
		s.renderError(w, r, http.StatusForbidden, "This account may not sign in.")
		return
	}
	if err := s.signIn(w, r, user, "link"); err != nil {
		s.fail(w, err)
		return
	}
	http.Redirect(w, r, s.takeNext(w, r), http.StatusSeeOther)
}

// apiLoginLink is POST /api/admin/users/{email}/login-link -> {"url"}.
func (s *server) apiLoginLink(w http.ResponseWriter, r *http.Request) {
	if !s.web() {
		writeError(w, http.StatusNotImplemented, "the portal has no session store")
		return
	}
	url, err := s.newLoginLink(mux.Vars(r)["email"])
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such user")
	case errors.Is(err, errNoBaseURL):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.Logger.Info("login link created", "user", mux.Vars(r)["email"], "by", UserFrom(r.Context()).Email)
		writeJSON(w, http.StatusCreated, map[string]string{"url": url})
	}
}

var errNoBaseURL = errors.New("set instance.public_url in config/instance.yaml: links are built from it")

func (s *server) newLoginLink(email string) (string, error) {
	return LoginLink(s.Users, s.links, s.baseURL(), email)
}

// LoginLink makes a single-use link, valid 10 minutes, that opens a portal session for the
// enabled user email (like Jupyter's token URL). base is the portal's public URL.
func LoginLink(users *store.Users, links *store.Links, base, email string) (string, error) {
	if base == "" {
		return "", errNoBaseURL
	}
	user, err := users.Get(email)
	if err != nil {
		return "", err
	}
	if user.Disabled {
		return "", errors.New("user " + user.Email + " is disabled")
	}
	token, err := links.Create(user.Email, store.LinkLogin, loginLinkTTL)
	if err != nil {
		return "", err
	}
	return base + "/login/link/" + token, nil
}
