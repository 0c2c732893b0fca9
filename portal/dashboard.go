package portal

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/schedule"
	"github.com/ai-data-analyst/analyst/store"
)

// tableRow is a table as the dashboard and catalogue show it.
type tableRow struct {
	Name, Folder, Description, Dataset string
	Rows                               int64
	Columns                            int
	Bytes                              int64
	LastSync, NextSync                 *time.Time
	Schedule                           string
	Status                             string // never | syncing | ok | failed
	Stale, Private                     bool
}

// snapshotTTL is how long pages reuse the sync state and the tables' run status: reading every
// run record on each page view would make the pages' cost grow with the history.
const snapshotTTL = time.Second

type snapshot struct {
	mu     sync.Mutex
	at     time.Time
	state  *store.SyncState
	status map[string]string
}

// syncSnapshot returns sync_state.json and each table's status in its newest run, at most
// snapshotTTL old.
func (s *server) syncSnapshot() (*store.SyncState, map[string]string, error) {
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	if time.Since(s.snap.at) < snapshotTTL {
		return s.snap.state, s.snap.status, nil
	}
	state, err := store.LoadSyncState(filepath.Join(s.Config.Paths.Metadata, "sync_state.json"))
	if err != nil {
		return nil, nil, err
	}
	status, err := s.tableStatus()
	if err != nil {
		return nil, nil, err
	}
	s.snap.at, s.snap.state, s.snap.status = time.Now(), state, status
	return state, status, nil
}

// staleWithoutSchedule is when a table with no schedule counts as stale.
const staleWithoutSchedule = 7 * 24 * time.Hour

// tableRows lists the tables user may see with their sync state and freshness.
func (s *server) tableRows(user *store.User) ([]tableRow, error) {
	state, status, err := s.syncSnapshot()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []tableRow
	for _, t := range s.Policy.Visible(user) {
		row := tableRow{Name: t.Name, Folder: t.Folder, Description: t.Description, Dataset: t.Dataset,
			Private: s.Config.IsPrivate(t), Status: "never", Schedule: t.Schedule}
		if ts, ok := state.Tables[t.ID]; ok {
			at := ts.LastSync
			row.Rows, row.Columns, row.Bytes, row.LastSync, row.Status = ts.Rows, ts.Columns, ts.Bytes, &at, "ok"
		}
		if st, ok := status[t.Name]; ok {
			row.Status = st
		}
		row.NextSync, row.Stale = freshness(t, row.LastSync, now)
		out = append(out, row)
	}
	return out, nil
}

// freshness gives a table's next scheduled sync and whether its data is stale: older than two
// schedule intervals (at least an hour), or than a week for a table synced by hand.
func freshness(t config.Table, last *time.Time, now time.Time) (*time.Time, bool) {
	limit := staleWithoutSchedule
	var next *time.Time
	if t.Schedule != "" {
		if sched, err := schedule.Parse(t.Schedule); err == nil {
			n := sched.Next(now)
			next = &n
			limit = max(2*sched.Next(n).Sub(n), time.Hour)
		}
	}
	return next, last != nil && now.Sub(*last) > limit
}

type dashboardView struct {
	Tables []tableRow
	Totals struct {
		Tables, Columns int
		Rows, Bytes     int64
		Stale, Failed   int
	}
	Runs        []*store.Run
	Failed      []*store.Run
	NeedsSetup  bool
	Server      string
	HasDatasets bool
}

func (s *server) dashboard(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	toks, err := s.Users.Tokens(user.Email)
	if err != nil {
		s.failPage(w, r, err)
		return
	}
	needsSetup, server := len(toks) == 0, s.serverURL(r)
	key := fmt.Sprint(s.visibilityKey(user), "\x00", needsSetup, "\x00", server)
	s.renderCached(w, r, "dashboard", "Dashboard", key, func() (any, error) {
		return s.dashboardView(user, needsSetup, server)
	})
}

func (s *server) dashboardView(user *store.User, needsSetup bool, server string) (*dashboardView, error) {
	rows, err := s.tableRows(user)
	if err != nil {
		return nil, err
	}
	v := &dashboardView{Tables: rows, Server: server, NeedsSetup: needsSetup, HasDatasets: len(s.Config.Instance.Datasets) > 0}
	for _, t := range rows {
		v.Totals.Tables++
		v.Totals.Columns += t.Columns
		v.Totals.Rows += t.Rows
		v.Totals.Bytes += t.Bytes
		if t.Stale {
			v.Totals.Stale++
		}
		if t.Status == "failed" {
			v.Totals.Failed++
		}
	}
	if user.Role == store.RoleAdmin {
		runs, err := s.Runs.List(50)
		if err != nil {
			return nil, err
		}
		for i, run := range runs {
			if i < 8 {
				v.Runs = append(v.Runs, run)
			}
			if run.Status == store.RunFailed && len(v.Failed) < 5 {
				v.Failed = append(v.Failed, run)
			}
		}
	}
	return v, nil
}

// serverURL is what analysts pass to `analyst pull --server`: the public URL, or for display
// only, the address this page was reached at.
func (s *server) serverURL(r *http.Request) string {
	if u := s.baseURL(); u != "" {
		return u
	}
	scheme := "https"
	if r.TLS == nil && s.insecureCookies() {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

type tokenView struct {
	Email, Token, Server string
	Own                  bool
}

// createOwnToken makes an API token for the signed-in user and shows it once with the pull
// command.
func (s *server) createOwnToken(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	plain, _, err := s.Users.CreateToken(user.Email, "portal")
	if err != nil {
		s.failPage(w, r, err)
		return
	}
	s.Logger.Info("api token created", "user", user.Email, "by", user.Email)
	s.render(w, r, http.StatusOK, "token", "Your token", tokenView{Email: user.Email, Token: plain, Server: s.serverURL(r), Own: true})
}

func (s *server) failPage(w http.ResponseWriter, r *http.Request, err error) {
	s.Logger.Error("page failed", "path", r.URL.Path, "error", err)
	s.renderError(w, r, http.StatusInternalServerError, "Something went wrong on our side. It has been logged.")
}
