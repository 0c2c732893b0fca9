package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

func (s *server) adminRoutes(r *mux.Router) {
	r.Handle("/admin", s.adminPage(s.adminHome)).Methods(http.MethodGet)
	r.Handle("/admin/users", s.adminPage(s.adminInvite)).Methods(http.MethodPost)
	r.Handle("/admin/users/{email}/role", s.adminPage(s.adminRole)).Methods(http.MethodPost)
	r.Handle("/admin/users/{email}/disable", s.adminPage(s.adminDisable(true))).Methods(http.MethodPost)
	r.Handle("/admin/users/{email}/enable", s.adminPage(s.adminDisable(false))).Methods(http.MethodPost)
	r.Handle("/admin/users/{email}/tokens", s.adminPage(s.adminToken)).Methods(http.MethodPost)
	r.Handle("/admin/users/{email}/tokens/{id}/revoke", s.adminPage(s.adminRevokeToken)).Methods(http.MethodPost)
	r.Handle("/admin/users/{email}/login-link", s.adminPage(s.adminLoginLink)).Methods(http.MethodPost)
	r.Handle("/admin/allowlist", s.adminPage(s.adminAllow)).Methods(http.MethodPost)
	r.Handle("/admin/allowlist/remove", s.adminPage(s.adminDisallow)).Methods(http.MethodPost)
	r.Handle("/admin/sources/{name}/test", s.adminPage(s.adminTestSource)).Methods(http.MethodPost)
	r.Handle("/admin/sync", s.adminPage(s.adminSync)).Methods(http.MethodPost)
}

type adminUser struct {
	*store.User
	Tokens   []*store.Token
	Sessions int
	Password bool
}

type scheduleView struct {
	Table, Schedule string
	Next, LastSync  *time.Time
	Stale           bool
}

type adminView struct {
	Users      []adminUser
	Allow      []store.AllowEntry
	Domains    []string
	Sources    []string
	Tables     []string
	Schedules  []scheduleView
	Jira       jiraStatus
	Roles      []string
	Self       string
	EmailReady bool
}

type jiraStatus struct {
	Configured  bool
	Domain      string
	LastWebhook *time.Time
	Report      *handlers.CheckReport // the last consistency check, if any
}

func (s *server) adminHome(w http.ResponseWriter, r *http.Request) {
	users, err := s.Users.List()
	if err != nil {
		s.failPage(w, r, err)
		return
	}
	v := adminView{Domains: s.Config.Instance.Auth.Domains(), Sources: s.Config.Sources(),
		Roles: []string{store.RoleAnalyst, store.RolePrivileged, store.RoleAdmin}, Self: UserFrom(r.Context()).Email,
		EmailReady: s.Config.Instance.Email.SMTPURL != "" && s.baseURL() != ""}
	for _, u := range users {
		au := adminUser{User: u}
		au.Tokens, _ = s.Users.Tokens(u.Email)
		au.Sessions, _ = s.sessions.Count(u.Email)
		_, perr := s.passwords.Get(u.Email)
		au.Password = perr == nil
		v.Users = append(v.Users, au)
	}
	if v.Allow, err = s.allow.List(); err != nil {
		s.failPage(w, r, err)
		return
	}
	rows, err := s.tableRows(UserFrom(r.Context()))
	if err != nil {
		s.failPage(w, r, err)
		return
	}
	for _, t := range rows {
		v.Tables = append(v.Tables, t.Name)
		if t.Schedule != "" {
			v.Schedules = append(v.Schedules, scheduleView{Table: t.Name, Schedule: t.Schedule, Next: t.NextSync, LastSync: t.LastSync, Stale: t.Stale})
		}
	}
	v.Jira = s.jiraStatus()
	s.render(w, r, http.StatusOK, "admin", "Administration", v)
}

// jiraStatus reports the Jira intake: configured, when the last webhook's issue was stored, and
// the last consistency report. Every issue is written into data/raw/jira/issues by a rename, so
// the folder's modification time is the last write, without reading every file.
func (s *server) jiraStatus() jiraStatus {
	j := jiraStatus{Configured: s.Config.Instance.Jira.Domain != "", Domain: s.Config.Instance.Jira.Domain}
	if fi, err := os.Stat(filepath.Join(s.Config.Paths.Raw, "jira", "issues")); err == nil {
		at := fi.ModTime()
		j.LastWebhook = &at
	}
	if b, err := os.ReadFile(filepath.Join(s.Config.Paths.Raw, "jira", "_consistency_report.json")); err == nil {
		var rep handlers.CheckReport
		if json.Unmarshal(b, &rep) == nil {
			j.Report = &rep
		}
	}
	return j
}

func (s *server) adminInvite(w http.ResponseWriter, r *http.Request) {
	email, err := store.NormalizeEmail(r.PostFormValue("email"))
	if err != nil {
		s.redirectFlash(w, r, "/admin", "error", err.Error())
		return
	}
	role := cmpRole(r.PostFormValue("role"))
	if _, err := s.Users.Get(email); err == nil {
		s.redirectFlash(w, r, "/admin", "error", email+" already has an account; change the role in the list.")
		return
	}
	if _, err := s.Users.Add(email, role); err != nil {
		s.redirectFlash(w, r, "/admin", "error", err.Error())
		return
	}
	by := UserFrom(r.Context()).Email
	if !s.admitted(email) {
		if _, err := s.allow.Add(store.AllowEmail, email, by); err != nil {
			s.failPage(w, r, err)
			return
		}
	}
	s.Logger.Info("user invited", "user", email, "role", role, "by", by)
	msg := fmt.Sprintf("%s is invited as %s. They can sign in with Google (when their domain or address is allowed) or ask for a password link on the sign-in page.", email, role)
	if r.PostFormValue("send_setup") == "1" && s.Config.Instance.Email.SMTPURL != "" && s.baseURL() != "" {
		s.mailLink(email, store.LinkSetup)
		msg = fmt.Sprintf("%s is invited as %s; a link to set a password is on its way.", email, role)
	}
	s.redirectFlash(w, r, "/admin", "success", msg)
}

func cmpRole(role string) string {
	if store.ValidRole(role) {
		return role
	}
	return store.RoleAnalyst
}

// notSelf refuses changes that would lock the acting admin out.
func (s *server) notSelf(w http.ResponseWriter, r *http.Request, email string) bool {
	if strings.EqualFold(email, UserFrom(r.Context()).Email) {
		s.redirectFlash(w, r, "/admin", "error", "You cannot change your own role or disable yourself; ask another admin.")
		return false
	}
	return true
}

func (s *server) adminRole(w http.ResponseWriter, r *http.Request) {
	email, role := mux.Vars(r)["email"], r.PostFormValue("role")
	if !s.notSelf(w, r, email) {
		return
	}
	if !store.ValidRole(role) {
		s.redirectFlash(w, r, "/admin", "error", "Unknown role.")
		return
	}
	if _, err := s.Users.Update(email, func(u *store.User) error { u.Role = role; return nil }); err != nil {
		s.redirectFlash(w, r, "/admin", "error", "No such user.")
		return
	}
	s.Logger.Info("role changed", "user", email, "role", role, "by", UserFrom(r.Context()).Email)
	s.redirectFlash(w, r, "/admin", "success", fmt.Sprintf("%s is now %s.", email, role))
}

// adminDisable disables (ending every session at once) or enables a user.
func (s *server) adminDisable(disable bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		email := mux.Vars(r)["email"]
		if !s.notSelf(w, r, email) {
			return
		}
		if _, err := s.Users.Update(email, func(u *store.User) error { u.Disabled = disable; return nil }); err != nil {
			s.redirectFlash(w, r, "/admin", "error", "No such user.")
			return
		}
		state := "enabled"
		if disable {
			state = "disabled"
			if n, err := s.sessions.DeleteUser(email); err != nil {
				s.Logger.Error("end sessions of disabled user", "user", email, "error", err)
			} else {
				s.Logger.Info("ended sessions of disabled user", "user", email, "sessions", n)
			}
		}
		s.Logger.Info("user "+state, "user", email, "by", UserFrom(r.Context()).Email)
		s.redirectFlash(w, r, "/admin", "success", fmt.Sprintf("%s is %s.", email, state))
	}
}

func (s *server) adminToken(w http.ResponseWriter, r *http.Request) {
	email := mux.Vars(r)["email"]
	plain, _, err := s.Users.CreateToken(email, "portal")
	if errors.Is(err, store.ErrNotFound) {
		s.redirectFlash(w, r, "/admin", "error", "No such user.")
		return
	}
	if err != nil {
		s.failPage(w, r, err)
		return
	}
	s.Logger.Info("api token created", "user", email, "by", UserFrom(r.Context()).Email)
	s.render(w, r, http.StatusOK, "token", "API token", tokenView{Email: email, Token: plain, Server: s.serverURL(r)})
}

func (s *server) adminRevokeToken(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	if err := s.Users.RevokeToken(v["email"], v["id"]); err != nil {
		s.redirectFlash(w, r, "/admin", "error", "No such token.")
		return
	}
	s.Logger.Info("api token revoked", "user", v["email"], "token", v["id"], "by", UserFrom(r.Context()).Email)
	s.redirectFlash(w, r, "/admin", "success", "Token "+v["id"]+" revoked.")
}

func (s *server) adminLoginLink(w http.ResponseWriter, r *http.Request) {
	email := mux.Vars(r)["email"]
	url, err := s.newLoginLink(email)
	if err != nil {
		s.redirectFlash(w, r, "/admin", "error", err.Error())
		return
	}
	s.Logger.Info("login link created", "user", email, "by", UserFrom(r.Context()).Email)
	s.redirectFlash(w, r, "/admin", "success", "Sign-in link for "+email+" (works once, for 10 minutes): "+url)
}

func (s *server) adminAllow(w http.ResponseWriter, r *http.Request) {
	e, err := s.allow.Add(r.PostFormValue("kind"), r.PostFormValue("value"), UserFrom(r.Context()).Email)
	if err != nil {
		s.redirectFlash(w, r, "/admin#access", "error", err.Error())
		return
	}
	s.Logger.Info("allow-list entry added", "kind", e.Kind, "value", e.Value, "by", UserFrom(r.Context()).Email)
	s.redirectFlash(w, r, "/admin#access", "success", fmt.Sprintf("%s %s may sign in.", e.Kind, e.Value))
}

func (s *server) adminDisallow(w http.ResponseWriter, r *http.Request) {
	kind, value := r.PostFormValue("kind"), r.PostFormValue("value")
	if err := s.allow.Remove(kind, value); err != nil {
		s.redirectFlash(w, r, "/admin#access", "error", "No such entry.")
		return
	}
	s.Logger.Info("allow-list entry removed", "kind", kind, "value", value, "by", UserFrom(r.Context()).Email)
	s.redirectFlash(w, r, "/admin#access", "success", fmt.Sprintf("%s %s removed from the allow-list.", kind, value))
}

// adminTestSource checks a configured source's connection and credentials.
func (s *server) adminTestSource(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if !contains(s.Config.Sources(), name) {
		s.redirectFlash(w, r, "/admin#sources", "error", "Unknown source.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	conn, err := connectors.Open(name, s.Config.ConnectorSettings(name))
	if err == nil {
		err = conn.Check(ctx)
	}
	if err != nil {
		s.Logger.Warn("source check failed", "source", name, "error", err)
		s.redirectFlash(w, r, "/admin#sources", "error", name+": "+err.Error())
		return
	}
	s.redirectFlash(w, r, "/admin#sources", "success", name+": connection works.")
}

// adminSync starts a manual sync of one table, or of all tables.
func (s *server) adminSync(w http.ResponseWriter, r *http.Request) {
	var names []string
	if t := r.PostFormValue("table"); t != "" {
		tab, ok := s.Config.Catalogue.Table(t)
		if !ok {
			s.redirectFlash(w, r, "/admin#sync", "error", "Unknown table.")
			return
		}
		names = []string{tab.Name}
	} else {
		for _, t := range s.Config.Catalogue.Tables {
			names = append(names, t.Name)
		}
	}
	sort.Strings(names)
	by := UserFrom(r.Context()).Email
	runID, err := s.RequestSync(names, pipeline.TriggerManual, by)
	if err != nil {
		s.failPage(w, r, err)
		return
	}
	s.Logger.Info("manual sync", "run_id", runID, "tables", len(names), "by", by)
	s.redirectFlash(w, r, "/runs/"+runID, "success", fmt.Sprintf("Sync of %d table(s) started.", len(names)))
}
