// Package portal owns the HTTP side of the server: the JSON API, webhook intake and the web
// pages. Handlers are organized by feature; every route states who may call it.
package portal

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/memory"
	"github.com/ai-data-analyst/analyst/notify"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// Deps are what the portal serves from.
type Deps struct {
	Config   *config.Config
	Runs     *store.Runs
	Replayer *pipeline.Replayer // nil when the backend keeps no local log
	// RequestSync starts a run for tables and returns its id.
	RequestSync func(tables []string, trigger, by string) (string, error)
	Users       *store.Users
	Policy      *access.Policy
	Logger      *slog.Logger
	Backup      BackupFunc // POST /api/admin/backup; nil: not offered
	Jira        JiraIntake // POST /webhooks/jira; nil: answers 503

	// The web portal (web.go): sessions, sign-in, pages, /health and /metrics.
	DB         *bolt.DB        // portal sessions, one-time links, allow-list, passwords
	Lags       pipeline.Lagger // the pipeline's lag per stage for /health and /metrics; nil: not shown
	OIDCIssuer string          // default https://accounts.google.com
	Mailer     Mailer          // default: SMTP from email.smtp_url
	DevMode    bool            // cookies without Secure, only with a localhost (or unset) public_url
	LocalURL   string          // where links point when public_url is unset (a server on loopback)
	SessionTTL time.Duration   // absolute session expiry; default 12h
	IdleTTL    time.Duration   // idle session expiry; default 2h

	Notify *notify.Service // analysts' notification scripts and channels; nil: none
	Memory *memory.Service // corporate memory (routes and rule files in manifests); nil: none
}

// New returns the portal's HTTP handler.
func New(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	s := newServer(d)
	r := mux.NewRouter()
	r.SkipClean(true) // a path with ".." reaches the handlers, which answer 404, not a redirect
	r.Use(s.securityHeaders, s.observe, s.authenticate, s.csrf, s.clearBodiesOnWrite)
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	api := r.PathPrefix("/api").Subrouter()
	api.Handle("/runs", admin(s.listRuns)).Methods(http.MethodGet)
	api.Handle("/runs/{id}", admin(s.getRun)).Methods(http.MethodGet)
	api.Handle("/runs/{id}/replay", admin(s.replayRun)).Methods(http.MethodPost)
	api.Handle("/sync", admin(s.sync)).Methods(http.MethodPost)
	s.userRoutes(api)
	s.tableRoutes(api)
	s.distributionRoutes(api)
	s.memoryRoutes(api)
	s.memoryPageRoutes(r)
	s.notificationRoutes(r, api)
	s.catalogAPIRoutes(api)
	s.backupRoutes(api, d.Backup)
	JiraRoutes(r, d.Config, d.Jira, s.Logger)
	s.webRoutes(r, api)
	r.NotFoundHandler = s.chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAPI(r) {
			s.renderError(w, r, http.StatusNotFound, "There is no such page.")
			return
		}
		writeError(w, http.StatusNotFound, "not found")
	}))
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	return r
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) listRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := s.Runs.List(100)
	if err != nil {
		s.fail(w, err)
		return
	}
	if runs == nil {
		runs = []*store.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
}

func (s *server) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.Runs.Get(mux.Vars(r)["id"])
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such run")
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *server) replayRun(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	n, err := s.replay(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such run")
	case errors.Is(err, errNoReplay):
		writeError(w, http.StatusNotImplemented, err.Error())
	case err != nil:
		s.fail(w, err)
	default:
		writeJSON(w, http.StatusAccepted, map[string]any{"run_id": id, "replayed": n})
	}
}

func (s *server) sync(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Tables []string `json:"tables"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body must be {\"tables\": [...]}")
		return
	}
	var names []string
	for _, name := range req.Tables {
		t, ok := s.Config.Catalogue.Table(name)
		if !ok || !t.Synced() {
			writeError(w, http.StatusBadRequest, "unknown table "+name+" (or one fed by Jira webhooks)")
			return
		}
		names = append(names, t.Name)
	}
	if len(req.Tables) == 0 {
		for _, t := range s.Config.Catalogue.SyncedTables() {
			names = append(names, t.Name)
		}
	}
	runID, err := s.RequestSync(names, pipeline.TriggerManual, "api")
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": runID})
}

func (s *server) fail(w http.ResponseWriter, err error) {
	s.Logger.Error("request failed", "error", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
