package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/memory"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// memoryPageRoutes serves the Corporate memory page and its forms.
func (s *server) memoryPageRoutes(r *mux.Router) {
	r.Handle("/memory", s.page(s.memoryPage)).Methods(http.MethodGet)
	r.Handle("/memory/vote", s.page(s.memoryForm)).Methods(http.MethodPost)
	r.Handle("/memory/consent", s.page(s.memoryForm)).Methods(http.MethodPost)
	r.Handle("/memory/collect", s.adminPage(s.memoryForm)).Methods(http.MethodPost)
	r.Handle("/memory/items/{id}/{action:approve|reject|mandatory}", s.adminPage(s.memoryForm)).Methods(http.MethodPost)
}

type memoryPageData struct {
	Enabled    bool
	Page       memory.Page
	Stats      memory.Stats
	Query      memory.Query
	Categories []string
	Back       string // this page with its query, where the forms return
	Prev, Next string // links to the neighbouring pages, "" at the ends
}

func (s *server) memoryPage(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	d := memoryPageData{Enabled: s.Memory != nil, Categories: memory.Categories, Back: "/memory"}
	if s.Memory == nil {
		s.render(w, r, http.StatusOK, "memory", "Corporate memory", d)
		return
	}
	q := r.URL.Query()
	page := 1
	if v := q.Get("page"); v != "" {
		page, _ = strconv.Atoi(v) // not a number: 0, which List refuses
	}
	isAdmin := user.Role == store.RoleAdmin
	d.Query = memory.Query{Search: q.Get("search"), Category: q.Get("category"), Sort: q.Get("sort"), Page: page, PerPage: 20,
		MyRules: q.Get("my_rules") == "1"}
	if isAdmin {
		d.Query.Status = q.Get("status")
	}
	var err error
	d.Page, err = s.Memory.List(user.Email, isAdmin, d.Query)
	if errors.Is(err, memory.ErrInvalid) {
		s.renderError(w, r, http.StatusBadRequest, "This list cannot be shown: "+err.Error())
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if d.Stats, err = s.Memory.Stats(user.Email, isAdmin); err != nil {
		s.fail(w, err)
		return
	}
	link := func(p int) string {
		v := url.Values{}
		for _, k := range []string{"search", "category", "sort", "my_rules", "status"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		if p > 1 {
			v.Set("page", strconv.Itoa(p))
		}
		if len(v) == 0 {
			return "/memory"
		}
		return "/memory?" + v.Encode()
	}
	d.Back = link(page)
	if page > 1 {
		d.Prev = link(page - 1)
	}
	if page*d.Query.PerPage < d.Page.Total {
		d.Next = link(page + 1)
	}
	s.render(w, r, http.StatusOK, "memory", "Corporate memory", d)
}

// memoryForm handles the page's forms and returns to the page (the "back" field, when it is a
// link to the page) with a message.
func (s *server) memoryForm(w http.ResponseWriter, r *http.Request) {
	back := r.PostFormValue("back")
	if back != "/memory" && !strings.HasPrefix(back, "/memory?") {
		back = "/memory"
	}
	if s.Memory == nil {
		s.redirectFlash(w, r, back, "error", "Corporate memory is not enabled on this server.")
		return
	}
	user := UserFrom(r.Context())
	done := func(err error, ok string) {
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.redirectFlash(w, r, back, "error", "There is no such item.")
		case errors.Is(err, memory.ErrInvalid):
			s.redirectFlash(w, r, back, "error", err.Error())
		case err != nil:
			s.Logger.Error("memory form", "error", err)
			s.redirectFlash(w, r, back, "error", "Something went wrong; try again.")
		default:
			s.redirectFlash(w, r, back, "success", ok)
		}
	}
	switch path := r.URL.Path; {
	case path == "/memory/vote":
		vote, err := strconv.Atoi(r.PostFormValue("vote"))
		if err != nil {
			done(memory.ErrInvalid, "")
			return
		}
		done(s.Memory.Vote(user.Email, r.PostFormValue("item_id"), vote), "Vote saved.")
	case path == "/memory/consent":
		on := r.PostFormValue("consent") == "1"
		msg := "Your notes will no longer be collected; what came from them leaves the catalogue at the next collection."
		if on {
			msg = "Thank you: your CLAUDE.local.md notes will be collected."
		}
		done(s.Memory.SetConsent(user.Email, on), msg)
	case path == "/memory/collect":
		_, err := s.Memory.RequestCollect(pipeline.TriggerManual, user.Email, true)
		done(err, "Collection started.")
	default:
		id := mux.Vars(r)["id"]
		var err error
		switch mux.Vars(r)["action"] {
		case "approve":
			_, err = s.Memory.Approve(id, user.Email)
		case "reject":
			_, err = s.Memory.Reject(id, user.Email, r.PostFormValue("reason"))
		case "mandatory":
			_, err = s.Memory.SetMandatory(id, user.Email, r.PostFormValue("mandatory") == "1")
		}
		done(err, "Item updated.")
	}
}
