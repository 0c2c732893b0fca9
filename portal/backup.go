package portal

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
)

// BackupFunc streams a backup archive of the running instance to w (ops.Backup over the open
// store); stateOnly leaves out the Parquet tree.
type BackupFunc func(ctx context.Context, w io.Writer, stateOnly bool) error

// backupRoutes registers POST /api/admin/backup (admin): the archive streams as the response
// body, so a large Parquet tree needs no temp file on the server. Without backup the route is
// not offered.
func (s *server) backupRoutes(api *mux.Router, backup BackupFunc) {
	if backup == nil {
		return
	}
	api.Handle("/admin/backup", admin(func(w http.ResponseWriter, r *http.Request) {
		stateOnly, _ := strconv.ParseBool(r.URL.Query().Get("state_only"))
		name := fmt.Sprintf("analyst-backup-%s.tar.gz", time.Now().UTC().Format("20060102T150405Z"))
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.Header().Set("Cache-Control", "no-store")
		started := time.Now()
		// Once bytes are sent the status cannot change: a failure leaves the archive without
		// its closing checksums, which the client's verification reports.
		if err := backup(r.Context(), w, stateOnly); err != nil {
			s.Logger.Error("backup over the API failed", "error", err, "by", UserFrom(r.Context()).Email)
			return
		}
		s.Logger.Info("backup streamed", "state_only", stateOnly, "by", UserFrom(r.Context()).Email,
			"took", time.Since(started).Round(time.Millisecond))
	})).Methods(http.MethodPost)
}
