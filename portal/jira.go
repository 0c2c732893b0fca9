package portal

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/handlers"
)

// MaxJiraWebhook is the largest webhook body accepted.
const MaxJiraWebhook = 10 << 20

// JiraIntake takes verified Jira webhooks into the event log, and runs the consistency check
// and backfills on demand (handlers.Jira).
type JiraIntake interface {
	Configured() bool
	Accept(deliveryID string, body map[string]any) (handlers.Accepted, error)
	Check(ctx context.Context, o handlers.CheckOptions) (*handlers.CheckReport, error)
	Backfill(ctx context.Context, o handlers.BackfillOptions) (int, error)
}

// JiraRoutes adds the Jira routes: POST /webhooks/jira (signed by Jira, no session),
// GET /webhooks/jira/health, GET /api/jira/consistency (admin: the last consistency report),
// and for `analyst jira check|backfill` while the server runs, POST /api/jira/check and
// POST /api/jira/backfill (admin). intake may be nil: these answer 503.
func JiraRoutes(r *mux.Router, cfg *config.Config, intake JiraIntake, logger *slog.Logger) {
	if logger == nil {
		logger = slog.Default()
	}
	h := &jiraWebhook{cfg: cfg.Instance.Jira, intake: intake, log: logger}
	r.HandleFunc("/webhooks/jira", h.receive).Methods(http.MethodPost)
	r.HandleFunc("/webhooks/jira/health", h.health).Methods(http.MethodGet)
	report := filepath.Join(cfg.Paths.Raw, "jira", "_consistency_report.json")
	r.Handle("/api/jira/consistency", admin(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(report)
		if errors.Is(err, os.ErrNotExist) {
			writeError(w, http.StatusNotFound, "no consistency check has run yet")
			return
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, "cannot read the consistency report")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})).Methods(http.MethodGet)
	r.Handle("/api/jira/check", admin(h.check)).Methods(http.MethodPost)
	r.Handle("/api/jira/backfill", admin(h.backfill)).Methods(http.MethodPost)
}

// JiraCheckRequest is the body of POST /api/jira/check.
type JiraCheckRequest struct {
	Days  int    `json:"days"` // default 30; 365 for the deep check
	JQL   string `json:"jql"`
	NoFix bool   `json:"no_fix"` // report only
}

// JiraBackfillRequest is the body of POST /api/jira/backfill.
type JiraBackfillRequest struct {
	JQL  string   `json:"jql"`
	Keys []string `json:"keys"`
	All  bool     `json:"all"` // also issues already stored
}

// check runs the consistency check now and answers with its report.
func (h *jiraWebhook) check(w http.ResponseWriter, r *http.Request) {
	var req JiraCheckRequest
	if !h.ready(w) || !decodeBody(w, r, &req, `{"days": N, "jql": "...", "no_fix": false}`) {
		return
	}
	rep, err := h.intake.Check(r.Context(), handlers.CheckOptions{Days: req.Days, JQL: req.JQL, Fix: !req.NoFix})
	if err != nil {
		h.log.Error("jira check", "error", err)
		writeError(w, http.StatusBadGateway, "consistency check failed: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// backfill queues the issues a JQL or key list names; the pipeline fetches them.
func (h *jiraWebhook) backfill(w http.ResponseWriter, r *http.Request) {
	var req JiraBackfillRequest
	if !h.ready(w) || !decodeBody(w, r, &req, `{"jql": "...", "keys": ["A-1"], "all": false}`) {
		return
	}
	n, err := h.intake.Backfill(r.Context(), handlers.BackfillOptions{JQL: req.JQL, Keys: req.Keys, SkipExisting: !req.All})
	if err != nil {
		h.log.Error("jira backfill", "error", err)
		writeError(w, http.StatusBadGateway, "backfill failed: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"queued": n})
}

// ready answers 503 when Jira is not set up in this process.
func (h *jiraWebhook) ready(w http.ResponseWriter) bool {
	if h.intake == nil || !h.intake.Configured() {
		writeError(w, http.StatusServiceUnavailable, "jira is not configured")
		return false
	}
	return true
}

type jiraWebhook struct {
	cfg    config.Jira
	intake JiraIntake
	log    *slog.Logger
}

// receive verifies a webhook and answers 202 once it is durably in the event log; the issue is
// fetched and written to Parquet afterwards by the pipeline.
func (h *jiraWebhook) receive(w http.ResponseWriter, r *http.Request) {
	body, err := readAll(http.MaxBytesReader(w, r.Body, MaxJiraWebhook))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, "webhook body over 10 MiB")
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the body")
		return
	}
	if h.intake == nil {
		writeError(w, http.StatusServiceUnavailable, "jira is not configured")
		return
	}
	switch {
	case h.cfg.WebhookSecret != "":
		sig := r.Header.Get("X-Hub-Signature-256")
		if sig == "" {
			sig = r.Header.Get("X-Hub-Signature")
		}
		if !validSignature(h.cfg.WebhookSecret, body, sig) {
			writeError(w, http.StatusUnauthorized, "bad or missing webhook signature")
			return
		}
	case !h.cfg.AllowUnsigned:
		writeError(w, http.StatusServiceUnavailable, "jira.webhook_secret is not set (set it, or jira.allow_unsigned: true to accept unsigned webhooks)")
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var payload map[string]any
	if err := dec.Decode(&payload); err != nil || payload == nil || dec.More() {
		writeError(w, http.StatusBadRequest, "body must be a JSON object")
		return
	}
	if !h.intake.Configured() {
		writeError(w, http.StatusServiceUnavailable, "jira is not configured")
		return
	}
	acc, err := h.intake.Accept(r.Header.Get("X-Atlassian-Webhook-Identifier"), payload)
	if errors.Is(err, handlers.ErrJiraBadPayload) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if errors.Is(err, handlers.ErrJiraNotConfigured) {
		writeError(w, http.StatusServiceUnavailable, "jira is not configured")
		return
	}
	if err != nil {
		// Not in the log: Jira delivers it again.
		h.log.Error("jira webhook not accepted", "event", acc.Event, "error", err)
		writeError(w, http.StatusInternalServerError, "webhook not stored; retry")
		return
	}
	status := "accepted"
	switch {
	case acc.Duplicate:
		status = "duplicate"
	case len(acc.Issues) == 0:
		status = "ignored"
	}
	if acc.Issues == nil {
		acc.Issues = []string{}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": status, "event": acc.Event, "issues": acc.Issues})
}

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// validSignature checks an X-Hub-Signature(-256) value: hex HMAC-SHA256 of the raw body, with
// or without a "sha256=" prefix, hex in either case, compared in constant time.
func validSignature(secret string, body []byte, header string) bool {
	header = strings.TrimSpace(header)
	if len(header) > 7 && strings.EqualFold(header[:7], "sha256=") {
		header = header[7:]
	}
	got, err := hex.DecodeString(header)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func (h *jiraWebhook) health(w http.ResponseWriter, r *http.Request) {
	domain := h.cfg.Domain
	if domain == "" {
		domain = "(not set)"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "ok", "configured": h.intake != nil && h.intake.Configured(),
		"webhook_secret_set": h.cfg.WebhookSecret != "", "jira_domain": domain,
	})
}
