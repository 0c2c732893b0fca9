package portal

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/ops"
	"github.com/ai-data-analyst/analyst/store"
)

// POST /api/admin/backup streams a complete, verifiable archive to admins only.
func TestBackupRoute(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "config"), 0o755)
	os.MkdirAll(filepath.Join(home, "docs"), 0o755)
	os.WriteFile(filepath.Join(home, "config/instance.yaml"), []byte("instance: {name: Backup API}\n"), 0o644)
	os.WriteFile(filepath.Join(home, "docs/data_description.md"), []byte("```yaml\ntables: []\n```\n"), 0o644)
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.OpenStore(t, cfg.Paths.Store)
	users, _ := store.NewUsers(db)
	token := func(email, role string) string {
		users.Add(email, role)
		plain, _, err := users.CreateToken(email, "test")
		if err != nil {
			t.Fatal(err)
		}
		return plain
	}
	adminToken, analystToken := token("boss@example.com", store.RoleAdmin), token("ann@example.com", store.RoleAnalyst)
	os.MkdirAll(filepath.Join(cfg.Paths.Parquet, "shop"), 0o755)
	os.WriteFile(filepath.Join(cfg.Paths.Parquet, "shop/orders.parquet"), []byte("PAR1 not really"), 0o644)

	var gotStateOnly bool
	s := &server{Deps: Deps{Config: cfg, Users: users, Logger: slog.New(slog.DiscardHandler)}}
	r := mux.NewRouter()
	r.Use(s.authenticate)
	s.backupRoutes(r.PathPrefix("/api").Subrouter(), func(ctx context.Context, w io.Writer, stateOnly bool) error {
		gotStateOnly = stateOnly
		_, err := ops.Backup(ctx, w, db, cfg.Paths, ops.BackupOptions{StateOnly: stateOnly, Instance: "Backup API"})
		return err
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	post := func(token, query string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/admin/backup"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {analystToken, http.StatusForbidden}} {
		resp := post(c.token, "")
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("token %q: status %d, want %d", c.token, resp.StatusCode, c.want)
		}
	}

	resp := post(adminToken, "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/gzip" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	info, err := ops.Verify(bytes.NewReader(body))
	if err != nil || info.Instance != "Backup API" || info.StateOnly {
		t.Fatalf("archive from the API: %+v %v", info, err)
	}

	resp = post(adminToken, "?state_only=true")
	stateBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if info, err := ops.Verify(bytes.NewReader(stateBody)); err != nil || !info.StateOnly || !gotStateOnly {
		t.Fatalf("state-only archive: %+v %v", info, err)
	}
}
