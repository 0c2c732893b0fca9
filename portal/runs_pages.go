package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// stageOrder is the pipeline a table goes through, as the timeline shows it.
var stageOrder = []string{"ingest", "transform", "profile", "publish", "notify"}

func (s *server) runRoutes(r *mux.Router) {
	r.Handle("/runs", s.adminPage(s.runsPage)).Methods(http.MethodGet)
	r.Handle("/runs/{id}", s.adminPage(s.runPage)).Methods(http.MethodGet)
	r.Handle("/runs/{id}/events", s.adminPage(s.runEvents)).Methods(http.MethodGet)
	r.Handle("/runs/{id}/retry", s.adminPage(s.retryRun)).Methods(http.MethodPost)
}

func (s *server) runsPage(w http.ResponseWriter, r *http.Request) {
	runs, err := s.Runs.List(100)
	if err != nil {
		s.failPage(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "runs", "Runs", runs)
}

type stageView struct {
	Name, State, Error string // State: done | failed | running | pending
	Duration           float64
	Attempts           int
}

type runTableView struct {
	*store.RunTable
	Timeline []stageView
}

type runView struct {
	Run    *store.Run
	Tables []runTableView
	Live   bool
}

// timeline puts a table's stages in pipeline order, with the ones not reached as pending.
func timeline(t *store.RunTable) []stageView {
	byName := map[string]*store.RunStage{}
	for _, st := range t.Stages {
		byName[st.Name] = st
	}
	names := append([]string(nil), stageOrder...)
	for _, st := range t.Stages { // stages beyond the standard chain (e.g. jira) come last
		if !contains(stageOrder, st.Name) {
			names = append(names, st.Name)
		}
	}
	var out []stageView
	for _, n := range names {
		sv := stageView{Name: n, State: "pending"}
		if st, ok := byName[n]; ok {
			sv.Duration, sv.Attempts, sv.Error = st.Duration, st.Attempts, st.Error
			switch {
			case st.Error != "":
				sv.State = "failed"
			case st.Done:
				sv.State = "done"
			default:
				sv.State = "running"
			}
		}
		out = append(out, sv)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func newRunView(run *store.Run) runView {
	v := runView{Run: run, Live: run.Status == store.RunQueued || run.Status == store.RunRunning}
	for _, t := range run.Tables {
		v.Tables = append(v.Tables, runTableView{RunTable: t, Timeline: timeline(t)})
	}
	return v
}

func (s *server) runPage(w http.ResponseWriter, r *http.Request) {
	run, err := s.Runs.Get(mux.Vars(r)["id"])
	if errors.Is(err, store.ErrNotFound) {
		s.renderError(w, r, http.StatusNotFound, "There is no such run.")
		return
	}
	if err != nil {
		s.failPage(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "run", "Run "+run.RunID, newRunView(run))
}

// runEvents streams a run as server-sent events whenever it changes, until it is finished
// (and a little after, so a retry started from another tab shows up) or the client leaves.
func (s *server) runEvents(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var last []byte
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	idleSince := time.Now()
	for {
		run, err := s.Runs.Get(id)
		if err != nil {
			fmt.Fprintf(w, "event: gone\ndata: {}\n\n")
			flusher.Flush()
			return
		}
		b, _ := json.Marshal(eventRun(run))
		if !bytes.Equal(b, last) {
			fmt.Fprintf(w, "data: %s\n\n", b)
			flusher.Flush()
			last, idleSince = b, time.Now()
		}
		if time.Since(idleSince) > 5*time.Minute {
			return // the browser reconnects if the page is still open
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// eventRun is the JSON a live run page receives; the page writes it with textContent only.
func eventRun(run *store.Run) map[string]any {
	var tables []map[string]any
	for _, t := range run.Tables {
		tables = append(tables, map[string]any{"name": t.Name, "status": t.Status, "rows": fmtRows(t.Rows),
			"error": t.Error, "stages": timeline(t)})
	}
	return map[string]any{"run_id": run.RunID, "status": run.Status, "tables": tables}
}

// retryRun is the Retry button: it replays the run's failed messages from the log.
func (s *server) retryRun(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	n, err := s.replay(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.renderError(w, r, http.StatusNotFound, "There is no such run.")
	case errors.Is(err, errNoReplay):
		s.redirectFlash(w, r, "/runs/"+id, "error", err.Error())
	case err != nil:
		s.failPage(w, r, err)
	case n == 0:
		s.redirectFlash(w, r, "/runs/"+id, "info", "Nothing to retry: this run has no failed messages left.")
	default:
		s.Logger.Info("run retried", "run_id", id, "messages", n, "by", UserFrom(r.Context()).Email)
		s.redirectFlash(w, r, "/runs/"+id, "success", fmt.Sprintf("Retrying %d failed step(s).", n))
	}
}

var errNoReplay = errors.New("replay needs the bbolt event log")

// replay re-publishes the run's pending poison messages and marks their tables queued.
func (s *server) replay(id string) (int, error) {
	if _, err := s.Runs.Get(id); err != nil {
		return 0, err
	}
	if s.Replayer == nil {
		return 0, errNoReplay
	}
	replayed, err := s.Replayer.Replay(func(p pipeline.Poisoned) bool { return p.RunID == id }, handlers.Requeue(s.Runs))
	return len(replayed), err
}
