package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ai-data-analyst/analyst/config"
)

// check is one line of `analyst doctor`.
type check struct {
	ok           bool
	what, detail string
}

// opsChecks are doctor's operational checks: secrets on disk, the Jira webhook reachable from
// outside, and NATS when the pipeline runs on it.
func opsChecks(ctx context.Context, cfg *config.Config) []check {
	checks := []check{checkSecrets(cfg)}
	if cfg.Instance.Jira.Domain != "" || cfg.Instance.Jira.WebhookSecret != "" {
		checks = append(checks, checkJiraWebhook(ctx, cfg))
	}
	if cfg.Instance.Pipeline.Backend == config.BackendNATS {
		checks = append(checks, checkNATS(cfg.Instance.Pipeline.NATSURL))
	}
	return checks
}

// checkSecrets: .env must be readable by the server's user alone.
func checkSecrets(cfg *config.Config) check {
	path := filepath.Join(cfg.Paths.Home, ".env")
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return check{true, "secrets", "no .env: secrets come from the environment"}
	case err != nil:
		return check{false, "secrets", err.Error()}
	case fi.Mode().Perm()&0o077 != 0:
		return check{false, "secrets", fmt.Sprintf(".env is mode %04o: others can read the secrets; run chmod 600 %s", fi.Mode().Perm(), path)}
	}
	return check{true, "secrets", ".env mode 0600"}
}

// checkJiraWebhook asks public_url + /webhooks/jira with GET: the route takes only POST, so a
// reachable server answers 405; 404 means the proxy does not forward it.
func checkJiraWebhook(ctx context.Context, cfg *config.Config) check {
	base := strings.TrimRight(cfg.Instance.Instance.PublicURL, "/")
	if base == "" {
		return check{false, "jira webhook", "instance.public_url is not set: Jira cannot reach /webhooks/jira"}
	}
	url := base + "/webhooks/jira"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return check{false, "jira webhook", err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return check{false, "jira webhook", fmt.Sprintf("%s does not answer: %v", url, err)}
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusMethodNotAllowed:
		return check{true, "jira webhook", url + " answers"}
	case resp.StatusCode == http.StatusNotFound:
		return check{false, "jira webhook", url + " is not found: is the reverse proxy forwarding /webhooks/ to analyst serve?"}
	}
	return check{false, "jira webhook", fmt.Sprintf("%s answers %s; expected 405 from analyst serve", url, resp.Status)}
}

// checkNATS connects to the pipeline's NATS server and checks JetStream is enabled.
func checkNATS(url string) check {
	if url == "" {
		return check{false, "nats", "pipeline.backend is nats but pipeline.nats_url is empty"}
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.Name("analyst-doctor"))
	if err != nil {
		return check{false, "nats", fmt.Sprintf("cannot connect to %s: %v", url, err)}
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.MaxWait(5 * time.Second))
	if err == nil {
		_, err = js.AccountInfo()
	}
	if err != nil {
		return check{false, "nats", fmt.Sprintf("%s has no JetStream: %v", url, err)}
	}
	return check{true, "nats", url + " with JetStream"}
}
