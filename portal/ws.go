package portal

import (
	"net/http"

	"github.com/gorilla/mux"
)

// wsRoutes: GET /ws/notifications, the desktop app's WebSocket. It authenticates with its first
// frame ({"type":"auth","token"}), not with the portal's session.
func (s *server) wsRoutes(r *mux.Router) {
	r.HandleFunc("/ws/notifications", func(w http.ResponseWriter, req *http.Request) {
		if s.desktopOff(w) {
			return
		}
		s.Notify.Desktop.ServeWS(w, req)
	}).Methods(http.MethodGet)
}
