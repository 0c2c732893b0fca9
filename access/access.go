// Package access owns who may see what: a table is visible to a user by role (admins and
// privileged analysts see private tables), by an explicit grant, and — for the workspace an
// analyst pulls — by the optional datasets they opted into. Nothing about a table reaches a
// user for whom CanSee is false.
package access

import (
	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// Policy decides visibility from the instance's configuration and its user records.
type Policy struct {
	Config *config.Config
	Users  *store.Users
}

// CanSee reports whether user may see anything of table (rows, profile, schema, file).
func (p *Policy) CanSee(user *store.User, t config.Table) bool {
	if user == nil || user.Disabled {
		return false
	}
	switch {
	case user.Role == store.RoleAdmin:
		return true
	case !p.Config.IsPrivate(t):
		return true
	case user.Role == store.RolePrivileged:
		return true
	default:
		return p.Users.Granted(t.Name, user.Email)
	}
}

// Visible lists the tables user may see, in catalogue order.
func (p *Policy) Visible(user *store.User) []config.Table {
	var out []config.Table
	for _, t := range p.Config.Catalogue.Tables {
		if p.CanSee(user, t) {
			out = append(out, t)
		}
	}
	return out
}

// InWorkspace reports whether table belongs in user's pulled workspace: visible, and either in
// no optional dataset or in one the user opted into (with the datasets it requires).
func (p *Policy) InWorkspace(user *store.User, t config.Table) bool {
	if !p.CanSee(user, t) {
		return false
	}
	return t.Dataset == "" || p.datasetOn(user, t.Dataset, map[string]bool{})
}

func (p *Policy) datasetOn(user *store.User, name string, seen map[string]bool) bool {
	if seen[name] || !user.Datasets[name] {
		return false
	}
	seen[name] = true
	for _, req := range p.Config.Instance.Datasets[name].Requires {
		if !p.datasetOn(user, req, seen) {
			return false
		}
	}
	return true
}
