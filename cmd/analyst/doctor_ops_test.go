package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/internal/testenv"
)

func opsInstance(t *testing.T, extra string) *config.Config {
	t.Helper()
	home := t.TempDir()
	testenv.WriteFile(t, filepath.Join(home, "config/instance.yaml"), "instance: {name: Ops, public_url: \"${PUBLIC_URL}\"}\n"+extra)
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "```yaml\ntables: []\n```\n")
	return mustLoad(t, home)
}

func mustLoad(t *testing.T, home string) *config.Config {
	t.Helper()
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func find(t *testing.T, checks []check, what string) check {
	t.Helper()
	for _, c := range checks {
		if c.what == what {
			return c
		}
	}
	t.Fatalf("no %q check in %+v", what, checks)
	return check{}
}

func TestDoctorOpsChecks(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/jira", func(w http.ResponseWriter, r *http.Request) {})
	good := httptest.NewServer(mux)
	defer good.Close()
	noRoute := httptest.NewServer(http.NotFoundHandler())
	defer noRoute.Close()

	t.Setenv("PUBLIC_URL", good.URL)
	cfg := opsInstance(t, "jira: {domain: acme.atlassian.net}\n")
	testenv.WriteFile(t, filepath.Join(cfg.Paths.Home, ".env"), "X=1\n")
	os.Chmod(filepath.Join(cfg.Paths.Home, ".env"), 0o644)
	checks := opsChecks(context.Background(), cfg)
	if c := find(t, checks, "secrets"); c.ok || !strings.Contains(c.detail, "chmod 600") {
		t.Fatalf("a world-readable .env must fail: %+v", c)
	}
	if c := find(t, checks, "jira webhook"); !c.ok {
		t.Fatalf("reachable webhook: %+v", c)
	}
	os.Chmod(filepath.Join(cfg.Paths.Home, ".env"), 0o600)
	if c := checkSecrets(cfg); !c.ok {
		t.Fatalf("0600 .env: %+v", c)
	}

	t.Setenv("PUBLIC_URL", noRoute.URL)
	cfg = opsInstance(t, "jira: {domain: acme.atlassian.net}\n")
	if c := checkJiraWebhook(context.Background(), cfg); c.ok || !strings.Contains(c.detail, "reverse proxy") {
		t.Fatalf("missing route: %+v", c)
	}
	t.Setenv("PUBLIC_URL", "http://127.0.0.1:1")
	cfg = opsInstance(t, "jira: {domain: acme.atlassian.net}\n")
	if c := checkJiraWebhook(context.Background(), cfg); c.ok || !strings.Contains(c.detail, "does not answer") {
		t.Fatalf("no server: %+v", c)
	}

	ns := startNATS(t)
	cfg = opsInstance(t, "pipeline: {backend: nats, nats_url: \""+ns.ClientURL()+"\"}\n")
	if c := find(t, opsChecks(context.Background(), cfg), "nats"); !c.ok {
		t.Fatalf("running NATS: %+v", c)
	}
	if c := checkNATS("nats://127.0.0.1:1"); c.ok {
		t.Fatalf("no NATS: %+v", c)
	}
}
