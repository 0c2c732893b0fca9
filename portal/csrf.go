package portal

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/gob"
	"net/http"
	"strings"
)

func init() { gob.Register(flash{}) }

// CSRF: every state-changing request that a browser could send on its own (cookie-authenticated
// calls, and the sign-in forms) must carry the token kept in the encrypted cookie, as the form
// field csrf_token or the header X-CSRF-Token. A cross-site page can neither read the cookie
// nor the token on our pages. Bearer calls carry no cookie and need no token; webhooks are
// signed by their sender.
const (
	csrfField  = "csrf_token"
	csrfHeader = "X-CSRF-Token"
)

func newCSRFToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrf rejects state-changing requests without the right token (403). It runs after
// authenticate.
func (s *server) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safeMethod(r.Method) || !s.web() || !s.needsCSRF(r) {
			next.ServeHTTP(w, r)
			return
		}
		want, _ := s.cookie(r).Values[keyCSRF].(string)
		got := r.Header.Get(csrfHeader)
		if got == "" {
			got = r.PostFormValue(csrfField)
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			s.Logger.Warn("csrf token missing or wrong", "path", r.URL.Path, "method", r.Method)
			if isAPI(r) {
				writeError(w, http.StatusForbidden, "missing or invalid CSRF token; reload the page")
				return
			}
			s.renderError(w, r, http.StatusForbidden, "The form expired or came from another site. Go back, reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// needsCSRF: cookie-authenticated calls, and any page form (sign-in forms included, against
// login CSRF). Anonymous API calls and webhooks are left to their own authentication.
func (s *server) needsCSRF(r *http.Request) bool {
	if viaCookie(r.Context()) {
		return true
	}
	if UserFrom(r.Context()) != nil { // bearer token
		return false
	}
	return !isAPI(r) && !strings.HasPrefix(r.URL.Path, "/webhooks/")
}

func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/health" || r.URL.Path == "/metrics"
}
