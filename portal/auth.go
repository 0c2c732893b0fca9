package portal

import (
	"context"
	"net/http"
	"strings"

	"github.com/ai-data-analyst/analyst/store"
)

type userKey struct{}

// UserFrom returns the authenticated user of a request, if any.
func UserFrom(ctx context.Context) *store.User {
	u, _ := ctx.Value(userKey{}).(*store.User)
	return u
}

// authenticate resolves `Authorization: Bearer <token>`, or else the portal's session cookie,
// to a user for the rest of the chain. Bearer calls carry no cookies, so they need no CSRF token.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && token != "" {
			user, _, err := s.Users.Authenticate(token)
			if err != nil {
				writeError(w, http.StatusUnauthorized, "invalid or revoked token")
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, user))
		} else if user := s.sessionUser(r); user != nil {
			ctx := context.WithValue(r.Context(), userKey{}, user)
			r = r.WithContext(context.WithValue(ctx, viaCookieKey{}, true))
		}
		next.ServeHTTP(w, r)
	})
}

// signedIn lets through any authenticated user.
func signedIn(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if UserFrom(r.Context()) == nil {
			writeError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		h(w, r)
	})
}

// admin lets through only admins.
func admin(h http.HandlerFunc) http.Handler {
	return signedIn(func(w http.ResponseWriter, r *http.Request) {
		if UserFrom(r.Context()).Role != store.RoleAdmin {
			writeError(w, http.StatusForbidden, "admin rights required")
			return
		}
		h(w, r)
	})
}
