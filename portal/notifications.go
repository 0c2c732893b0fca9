package portal

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/notify"
	"github.com/ai-data-analyst/analyst/store"
)

// notificationRoutes serves analysts' notification scripts, their inbox, the Telegram and
// desktop links, the desktop WebSocket and the Notifications page. Nothing is registered when
// the server runs without notifications (Deps.Notify nil).
func (s *server) notificationRoutes(r, api *mux.Router) {
	if s.Notify == nil {
		return
	}
	api.Handle("/notifications", signedIn(s.inbox)).Methods(http.MethodGet)
	api.HandleFunc("/notifications/images/{id}", s.notificationImage).Methods(http.MethodGet)
	api.Handle("/notifications/scripts", signedIn(s.listScripts)).Methods(http.MethodGet)
	api.Handle("/notifications/scripts/{name}", signedIn(s.putScript)).Methods(http.MethodPut)
	api.Handle("/notifications/scripts/{name}", signedIn(s.deleteScript)).Methods(http.MethodDelete)
	api.Handle("/notifications/scripts/{name}/run", signedIn(s.runScript)).Methods(http.MethodPost)
	api.Handle("/notifications/scripts/{name}/settings", signedIn(s.scriptSettings)).Methods(http.MethodPost)
	s.telegramRoutes(api)
	s.desktopRoutes(r, api)
	if s.web() {
		s.notificationPages(r)
	}
}

// inbox is GET /api/notifications: the caller's newest notifications (?limit, default 50, at
// most 500) with each channel's status.
func (s *server) inbox(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 {
		limit = min(n, 500)
	}
	notes, err := s.Notify.State.Inbox(UserFrom(r.Context()).Email, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	type item struct {
		store.Notification
		ImageURL string `json:"image_url,omitempty"`
	}
	out := make([]item, 0, len(notes))
	for _, n := range notes {
		it := item{Notification: n}
		if n.Image != "" {
			it.ImageURL = "/api/notifications/images/" + n.ID
		}
		out = append(out, it)
	}
	writeJSON(w, http.StatusOK, out)
}

// notificationImage serves an image to its owner only: a signed-in owner, or a holder of the
// signed URL that the owner's desktop app received. Anyone else gets 404, as for a missing one.
func (s *server) notificationImage(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	note, err := s.Notify.State.Notification(id)
	if err != nil || note.Image == "" {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	user := UserFrom(r.Context())
	owner := user != nil && user.Email == note.User
	if !owner && s.Notify.Desktop != nil {
		q := r.URL.Query()
		owner = s.Notify.Desktop.CheckImage(id, q.Get("exp"), q.Get("sig"))
	}
	if !owner {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	f, err := os.Open(s.Notify.ImagePath(note))
	if err != nil {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	defer f.Close()
	ctype := "image/png"
	if filepath.Ext(note.Image) == ".jpg" {
		ctype = "image/jpeg"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "private, max-age=86400")
	io.Copy(w, f)
}

func (s *server) listScripts(w http.ResponseWriter, r *http.Request) {
	infos, err := s.Notify.List(UserFrom(r.Context()).Email)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, infos)
}

// putScript is PUT /api/notifications/scripts/{name} (what `analyst push` sends): the body is
// the script.
func (s *server) putScript(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, notify.MaxScriptSize+1))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "a script may have at most 1 MiB")
		return
	}
	sc, err := s.Notify.Put(UserFrom(r.Context()).Email, mux.Vars(r)["name"], body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

func (s *server) deleteScript(w http.ResponseWriter, r *http.Request) {
	err := s.Notify.Delete(UserFrom(r.Context()).Email, mux.Vars(r)["name"])
	if s.scriptError(w, err) {
		writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
	}
}

func (s *server) runScript(w http.ResponseWriter, r *http.Request) {
	id, err := s.Notify.RunNow(UserFrom(r.Context()).Email, mux.Vars(r)["name"], 0)
	if s.scriptError(w, err) {
		writeJSON(w, http.StatusAccepted, map[string]string{"request_id": id})
	}
}

// scriptSettings is POST .../settings {"muted": bool, "schedule": "every 15m" | "" (none)};
// fields left out stay as they are.
func (s *server) scriptSettings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Muted    *bool   `json:"muted"`
		Schedule *string `json:"schedule"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `body must be {"muted": true|false, "schedule": "every 15m"}`)
		return
	}
	st, err := s.Notify.Settings(UserFrom(r.Context()).Email, mux.Vars(r)["name"], req.Muted, req.Schedule)
	if s.scriptError(w, err) {
		writeJSON(w, http.StatusOK, st)
	}
}

// scriptError answers a failed script operation; it returns true when there was none.
func (s *server) scriptError(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such script")
	case strings.HasPrefix(err.Error(), "script name") || strings.HasPrefix(err.Error(), "schedule"):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.fail(w, err)
	}
	return false
}

// notificationPage is what the Notifications page shows.
type notificationPage struct {
	Scripts      []notify.ScriptInfo
	Inbox        []store.Notification
	Telegram     *store.TelegramLink
	TelegramOn   bool
	BotUsername  string
	Desktop      *store.DesktopLink
	DesktopOn    bool
	DesktopURL   string // shown once after "Link desktop app"
	ScriptsError string
}

// notificationPages: GET /notifications and its forms (run now, mute, schedule, link and unlink).
func (s *server) notificationPages(r *mux.Router) {
	r.Handle("/notifications", s.page(s.notificationsPage)).Methods(http.MethodGet)
	r.Handle("/notifications/scripts/{name}/run", s.page(s.notificationsForm)).Methods(http.MethodPost)
	r.Handle("/notifications/scripts/{name}/mute", s.page(s.notificationsForm)).Methods(http.MethodPost)
	r.Handle("/notifications/scripts/{name}/schedule", s.page(s.notificationsForm)).Methods(http.MethodPost)
	r.Handle("/notifications/telegram/verify", s.page(s.notificationsForm)).Methods(http.MethodPost)
	r.Handle("/notifications/telegram/unlink", s.page(s.notificationsForm)).Methods(http.MethodPost)
	r.Handle("/notifications/desktop/authorize", s.page(s.notificationsPage)).Methods(http.MethodPost)
	r.Handle("/notifications/desktop/unlink", s.page(s.notificationsForm)).Methods(http.MethodPost)
}

func (s *server) notificationsPage(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context()).Email
	p := notificationPage{TelegramOn: s.Notify.Telegram != nil, DesktopOn: s.Notify.Desktop != nil,
		BotUsername: s.Config.Instance.Telegram.BotUsername}
	var err error
	if p.Scripts, err = s.Notify.List(user); err != nil {
		p.ScriptsError = err.Error()
	}
	if p.Inbox, err = s.Notify.State.Inbox(user, 20); err != nil {
		s.fail(w, err)
		return
	}
	if link, ok, _ := s.Notify.State.TelegramLink(user); ok {
		p.Telegram = &link
	}
	if r.Method == http.MethodPost && p.DesktopOn {
		if p.DesktopURL, err = s.Notify.Desktop.Authorize(user); err != nil {
			s.fail(w, err)
			return
		}
	}
	if link, ok, _ := s.Notify.State.DesktopLink(user); ok {
		p.Desktop = &link
	}
	s.render(w, r, http.StatusOK, "notifications", "Notifications", p)
}

// notificationsForm handles the page's forms and goes back to the page with a message.
func (s *server) notificationsForm(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context()).Email
	name := mux.Vars(r)["name"]
	back := func(err error, ok string) {
		if err != nil {
			msg := err.Error()
			if errors.Is(err, store.ErrNotFound) {
				msg = "There is no such script or link."
			}
			s.redirectFlash(w, r, "/notifications", "error", msg)
			return
		}
		s.redirectFlash(w, r, "/notifications", "success", ok)
	}
	switch path := r.URL.Path; {
	case strings.HasSuffix(path, "/run"):
		_, err := s.Notify.RunNow(user, name, 0)
		back(err, "Running "+name+"; the result shows here and on your linked channels.")
	case strings.HasSuffix(path, "/mute"):
		muted := r.PostFormValue("muted") == "1"
		_, err := s.Notify.Settings(user, name, &muted, nil)
		back(err, map[bool]string{true: name + " is muted.", false: name + " is no longer muted."}[muted])
	case strings.HasSuffix(path, "/schedule"):
		spec := strings.TrimSpace(r.PostFormValue("schedule"))
		_, err := s.Notify.Settings(user, name, nil, &spec)
		back(err, "Schedule of "+name+" saved.")
	case strings.HasSuffix(path, "/telegram/verify"):
		_, status, msg := s.linkTelegram(r.Context(), user, r.PostFormValue("code"))
		if status != http.StatusOK {
			back(errors.New(msg), "")
			return
		}
		back(nil, "Telegram is linked.")
	case strings.HasSuffix(path, "/telegram/unlink"):
		back(s.Notify.State.UnlinkTelegram(user), "Telegram is unlinked.")
	case strings.HasSuffix(path, "/desktop/unlink"):
		if s.Notify.Desktop == nil {
			back(errors.New("the desktop app is not configured"), "")
			return
		}
		back(s.Notify.Desktop.Unlink(user), "The desktop app is unlinked; its tokens no longer work.")
	}
}
