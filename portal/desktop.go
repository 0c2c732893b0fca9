package portal

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/store"
)

// desktopRoutes: the desktop app's link (authorize returns the URL that hands the app its
// token), token refresh, unlink (revokes every token) and the WebSocket.
func (s *server) desktopRoutes(r, api *mux.Router) {
	api.Handle("/desktop/authorize", signedIn(s.desktopAuthorize)).Methods(http.MethodPost)
	api.HandleFunc("/desktop/refresh", s.desktopRefresh).Methods(http.MethodPost)
	api.Handle("/desktop/unlink", signedIn(s.desktopUnlink)).Methods(http.MethodPost)
	s.wsRoutes(r)
}

func (s *server) desktopOff(w http.ResponseWriter) bool {
	if s.Notify.Desktop == nil {
		writeError(w, http.StatusServiceUnavailable, "the desktop app is not configured on this server (desktop.jwt_secret)")
		return true
	}
	return false
}

func (s *server) desktopAuthorize(w http.ResponseWriter, r *http.Request) {
	if s.desktopOff(w) {
		return
	}
	url, err := s.Notify.Desktop.Authorize(UserFrom(r.Context()).Email)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": url})
}

// desktopRefresh trades a token, up to 7 days past its expiry and not revoked, for a new one.
// The token comes in the body ({"token"}): the API's Bearer header carries API tokens only.
func (s *server) desktopRefresh(w http.ResponseWriter, r *http.Request) {
	if s.desktopOff(w) {
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil || req.Token == "" {
		writeError(w, http.StatusBadRequest, `body must be {"token": "<desktop token>"}`)
		return
	}
	tok, err := s.Notify.Desktop.Refresh(req.Token)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "invalid, expired or revoked token")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

func (s *server) desktopUnlink(w http.ResponseWriter, r *http.Request) {
	if s.desktopOff(w) {
		return
	}
	err := s.Notify.Desktop.Unlink(UserFrom(r.Context()).Email)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusBadRequest, "The desktop app is not linked.")
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"linked": false})
}
