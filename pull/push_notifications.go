package pull

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
)

// notificationName is what the server accepts as a script name (notify.ValidName).
var notificationName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$`)

// pushNotifications mirrors the workspace's user/notifications/ to the server: every script is
// uploaded, and scripts the server holds that the folder no longer has are deleted there (the
// folder is the source of truth, as the original's rsync --delete). Without the folder nothing
// is touched. A server without notifications (404) is a warning, not an error.
func (p *puller) pushNotifications(ctx context.Context, res *PushResult) error {
	dir := filepath.Join(p.dir, "user", "notifications")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var held []struct {
		Name string `json:"name"`
	}
	err = p.retry(ctx, "notification scripts", func() error {
		return p.call(ctx, http.MethodGet, "/api/notifications/scripts", nil, &held)
	})
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusNotFound {
		res.Warnings = append(res.Warnings, "user/notifications: this server does not run notification scripts")
		return nil
	}
	if err != nil {
		return fmt.Errorf("list notification scripts: %w", err)
	}
	local := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !notificationName.MatchString(name) {
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		local[name] = true
		var reply struct{}
		err = p.retry(ctx, name, func() error {
			return p.call(ctx, http.MethodPut, "/api/notifications/scripts/"+url.PathEscape(name), body, &reply)
		})
		if err != nil {
			// A script the server refuses (a bad header) is reported; the others still go.
			res.Warnings = append(res.Warnings, "user/notifications/"+name+": "+err.Error())
			continue
		}
		res.Scripts++
	}
	for _, h := range held {
		if local[h.Name] {
			continue
		}
		var reply struct{}
		err := p.retry(ctx, h.Name, func() error {
			return p.call(ctx, http.MethodDelete, "/api/notifications/scripts/"+url.PathEscape(h.Name), nil, &reply)
		})
		if err != nil {
			return fmt.Errorf("delete notification script %s: %w", h.Name, err)
		}
		res.ScriptsDeleted++
	}
	return nil
}
