package portal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/memory"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
	"github.com/ai-data-analyst/analyst/workspace"
)

// memoryRoutes serves corporate memory: browsing, voting, consent and stats for everyone
// signed in; collection and governance (edit, approve, reject, mandatory) for admins.
func (s *server) memoryRoutes(api *mux.Router) {
	api.Handle("/memory/items", signedIn(s.withMemory(s.memoryItems))).Methods(http.MethodGet)
	api.Handle("/memory/vote", signedIn(s.withMemory(s.memoryVote))).Methods(http.MethodPost)
	api.Handle("/memory/stats", signedIn(s.withMemory(s.memoryStats))).Methods(http.MethodGet)
	api.Handle("/memory/consent", signedIn(s.withMemory(s.memoryConsent))).Methods(http.MethodGet, http.MethodPost)
	api.Handle("/admin/memory/collect", admin(s.withMemory(s.memoryCollect))).Methods(http.MethodPost)
	api.Handle("/admin/memory/items/{id}", admin(s.withMemory(s.memoryEdit))).Methods(http.MethodPatch)
	api.Handle("/admin/memory/items/{id}/{action:approve|reject|mandatory}", admin(s.withMemory(s.memoryGovern))).Methods(http.MethodPost)
}

func (s *server) withMemory(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Memory == nil {
			writeError(w, http.StatusNotFound, "corporate memory is not enabled on this server")
			return
		}
		h(w, r)
	}
}

// memoryError maps the service's errors to replies.
func (s *server) memoryError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, memory.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such item")
	default:
		s.fail(w, err)
	}
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "body must be "+shape)
		return false
	}
	return true
}

// memoryItems lists items: ?search= &category= &sort=score|recent|contributors &page= &per_page=
// (at most 100) &my_rules=1, and for admins &status=pending|rejected|all.
func (s *server) memoryItems(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	q := r.URL.Query()
	num := func(key string, def int) (int, bool) {
		v := q.Get(key)
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, key+" must be a number")
			return 0, false
		}
		return n, true
	}
	page, ok := num("page", 1)
	if !ok {
		return
	}
	perPage, ok := num("per_page", 20)
	if !ok {
		return
	}
	myRules, _ := strconv.ParseBool(q.Get("my_rules"))
	res, err := s.Memory.List(user.Email, user.Role == store.RoleAdmin, memory.Query{Search: q.Get("search"), Category: q.Get("category"),
		Sort: q.Get("sort"), Page: page, PerPage: perPage, MyRules: myRules, Status: q.Get("status")})
	if err != nil {
		s.memoryError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// memoryVote records {"item_id", "vote": -1|0|1}; 0 removes the vote.
func (s *server) memoryVote(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ItemID string `json:"item_id"`
		Vote   *int   `json:"vote"`
	}
	if !decodeBody(w, r, &req, `{"item_id": "...", "vote": -1|0|1}`) {
		return
	}
	if req.ItemID == "" || req.Vote == nil {
		writeError(w, http.StatusBadRequest, `body must be {"item_id": "...", "vote": -1|0|1}`)
		return
	}
	if err := s.Memory.Vote(UserFrom(r.Context()).Email, req.ItemID, *req.Vote); err != nil {
		s.memoryError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"item_id": req.ItemID, "vote": *req.Vote})
}

func (s *server) memoryStats(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	st, err := s.Memory.Stats(user.Email, user.Role == store.RoleAdmin)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// memoryConsent reads or sets (POST {"consent": bool}) whether the caller's notes are mined.
func (s *server) memoryConsent(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	if r.Method == http.MethodPost {
		var req struct {
			Consent *bool `json:"consent"`
		}
		if !decodeBody(w, r, &req, `{"consent": true|false}`) {
			return
		}
		if req.Consent == nil {
			writeError(w, http.StatusBadRequest, `body must be {"consent": true|false}`)
			return
		}
		if err := s.Memory.SetConsent(user.Email, *req.Consent); err != nil {
			s.fail(w, err)
			return
		}
		s.Logger.Info("memory consent changed", "user", user.Email, "consent", *req.Consent)
	}
	c, err := s.Memory.Mem.Consent(user.Email)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// memoryCollect runs the collector now (ignoring the per-user backoff) -> 202 {"run_id"}.
func (s *server) memoryCollect(w http.ResponseWriter, r *http.Request) {
	id, err := s.Memory.RequestCollect(pipeline.TriggerManual, UserFrom(r.Context()).Email, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id})
}

// memoryEdit changes an item's text: {"title", "content", "category", "tags"}, each optional.
func (s *server) memoryEdit(w http.ResponseWriter, r *http.Request) {
	var e memory.Edit
	if !decodeBody(w, r, &e, `{"title", "content", "category", "tags"} (each optional)`) {
		return
	}
	it, err := s.Memory.EditItem(mux.Vars(r)["id"], UserFrom(r.Context()).Email, e)
	if err != nil {
		s.memoryError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, it)
}

// memoryGovern approves, rejects ({"reason"}) or sets mandatory ({"mandatory": bool}) an item.
func (s *server) memoryGovern(w http.ResponseWriter, r *http.Request) {
	id, by := mux.Vars(r)["id"], UserFrom(r.Context()).Email
	var it store.MemoryItem
	var err error
	switch mux.Vars(r)["action"] {
	case "approve":
		it, err = s.Memory.Approve(id, by)
	case "reject":
		var req struct {
			Reason string `json:"reason"`
		}
		if r.ContentLength != 0 && !decodeBody(w, r, &req, `{"reason": "..."}`) {
			return
		}
		it, err = s.Memory.Reject(id, by, req.Reason)
	case "mandatory":
		var req struct {
			Mandatory *bool `json:"mandatory"`
		}
		if !decodeBody(w, r, &req, `{"mandatory": true|false}`) {
			return
		}
		if req.Mandatory == nil {
			writeError(w, http.StatusBadRequest, `body must be {"mandatory": true|false}`)
			return
		}
		it, err = s.Memory.SetMandatory(id, by, *req.Mandatory)
	}
	if err != nil {
		s.memoryError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, it)
}

// --- rules delivery: the caller's rule files are part of their manifest under rules/.

// addRules lists the caller's rule files in their view.
func (d *distribution) addRules(user *store.User, view *workspace.View) error {
	if d.Memory == nil {
		return nil
	}
	rules, err := d.Memory.Rules(user.Email)
	if err != nil {
		return err
	}
	for _, rf := range rules {
		sum := sha256.Sum256(rf.Content)
		view.Files = append(view.Files, workspace.File{Path: memory.RulesDir + "/" + rf.Name, Size: int64(len(rf.Content)), SHA256: hex.EncodeToString(sum[:])})
	}
	return nil
}

// serveRule serves one of the caller's rule files; anyone else's is a 404.
func (d *distribution) serveRule(w http.ResponseWriter, r *http.Request, user *store.User, name string) {
	if d.Memory == nil || strings.Contains(name, "/") {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	rf, ok, err := d.Memory.Rule(user.Email, name)
	if err != nil {
		d.fail(w, err)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	sum := sha256.Sum256(rf.Content)
	serveBytes(w, r, name, hex.EncodeToString(sum[:]), rf.Content)
}
