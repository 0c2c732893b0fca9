package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// The analyst's path end to end, as users run it: `analyst serve` on the demo instance, then
// `analyst pull` for a standard and a privileged analyst; DuckDB queries every view; a second
// pull moves nothing; nothing of the private table reaches the standard analyst.
func TestServeDemoThenPull(t *testing.T) {
	home := t.TempDir()
	srv := startServer(t, home, "e2e-admin-token-000000001")
	base := srv.URL
	call := func(method, path, token, body string) (int, []byte) { return srv.call(t, method, path, token, body) }
	const admin = ""
	// The startup sync of the demo tables finishes.
	for deadline := time.Now().Add(90 * time.Second); ; {
		_, body := call("GET", "/api/runs", admin, "")
		if strings.Contains(string(body), `"status":"succeeded"`) && !strings.Contains(string(body), `"status":"running"`) && !strings.Contains(string(body), `"status":"queued"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's startup sync did not finish: %s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	token := func(email, role string) string {
		if code, body := call("POST", "/api/admin/users", admin, `{"email":"`+email+`","role":"`+role+`"}`); code != http.StatusCreated {
			t.Fatalf("add %s: %d %s", email, code, body)
		}
		_, body := call("POST", "/api/admin/users/"+email+"/tokens", admin, "")
		var tok struct{ Token string }
		json.Unmarshal(body, &tok)
		return tok.Token
	}
	analystTok, privilegedTok := token("ann@example.com", "analyst"), token("pat@example.com", "privileged")

	pull := func(dir, tok string) string {
		out, err := exec.Command(binary, "pull", "--server", base, "--token", tok, "--dir", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("pull: %v\n%s", err, out)
		}
		return string(out)
	}
	ann := t.TempDir()
	pull(ann, analystTok)
	db, err := sql.Open("duckdb", filepath.Join(ann, "user/duckdb/analytics.duckdb")+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'`)
	if err != nil {
		t.Fatal(err)
	}
	var views []string
	for rows.Next() {
		var v string
		rows.Scan(&v)
		views = append(views, v)
	}
	rows.Close()
	private := 0
	for _, v := range views {
		var n int64
		if err := db.QueryRow(`SELECT count(*) FROM "` + v + `"`).Scan(&n); err != nil {
			t.Errorf("view %s: %v", v, err)
		}
		if v == "employee_salaries" {
			private++
		}
	}
	db.Close()
	if len(views) < 8 || private != 0 {
		t.Fatalf("the analyst's views: %v", views)
	}
	// Nothing of the private table anywhere in the standard analyst's workspace.
	filepath.WalkDir(ann, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".duckdb") {
			return nil
		}
		b, _ := os.ReadFile(p)
		if strings.Contains(p, "salar") || strings.Contains(string(b), "employee_salaries") {
			t.Errorf("%s reveals the private table", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(ann, "server/workspace/examples/notifications/revenue_drop.sh")); err != nil {
		t.Errorf("the example alert scripts are not in the workspace: %v", err)
	}
	if out := pull(ann, analystTok); !strings.Contains(out, "pulled 0 files (0 B)") {
		t.Fatalf("a second pull must move nothing: %s", out)
	}

	pat := t.TempDir()
	pull(pat, privilegedTok)
	if _, err := os.Stat(filepath.Join(pat, "server/parquet/private/employee_salaries.parquet")); err != nil {
		t.Fatalf("the privileged analyst lacks the private table: %v", err)
	}
}
