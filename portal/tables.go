package portal

import (
	"net/http"
	"path/filepath"
	"time"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/store"
)

// tableInfo is one entry of GET /api/tables.
type tableInfo struct {
	Name     string     `json:"name"`
	Folder   string     `json:"folder"`
	Rows     int64      `json:"rows"`
	Columns  int        `json:"columns"`
	Bytes    int64      `json:"bytes"`
	LastSync *time.Time `json:"last_sync"`
	Status   string     `json:"status"` // never | syncing | ok | failed
	Private  bool       `json:"private"`
	Dataset  string     `json:"dataset,omitempty"`
}

func (s *server) tableRoutes(api *mux.Router) {
	api.Handle("/tables", signedIn(s.listTables)).Methods(http.MethodGet)
}

// listTables returns the tables the caller may see, with their last sync.
func (s *server) listTables(w http.ResponseWriter, r *http.Request) {
	state, err := store.LoadSyncState(filepath.Join(s.Config.Paths.Metadata, "sync_state.json"))
	if err != nil {
		s.fail(w, err)
		return
	}
	status, err := s.tableStatus()
	if err != nil {
		s.fail(w, err)
		return
	}
	out := []tableInfo{}
	for _, t := range s.Policy.Visible(UserFrom(r.Context())) {
		info := tableInfo{Name: t.Name, Folder: t.Folder, Private: s.Config.IsPrivate(t), Dataset: t.Dataset, Status: "never"}
		if ts, ok := state.Tables[t.ID]; ok {
			at := ts.LastSync
			info.Rows, info.Columns, info.Bytes, info.LastSync, info.Status = ts.Rows, ts.Columns, ts.Bytes, &at, "ok"
		}
		if st, ok := status[t.Name]; ok {
			info.Status = st
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, out)
}

// tableStatus is each table's state in its newest run, when that run is not a success.
func (s *server) tableStatus() (map[string]string, error) {
	runs, err := s.Runs.List(200)
	status := map[string]string{}
	seen := map[string]bool{}
	for _, run := range runs { // newest first
		for _, t := range run.Tables {
			if seen[t.Name] {
				continue
			}
			seen[t.Name] = true
			switch t.Status {
			case store.RunQueued, store.RunRunning:
				status[t.Name] = "syncing"
			case store.RunFailed:
				status[t.Name] = "failed"
			}
		}
	}
	return status, err
}
