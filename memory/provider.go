package memory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/config"
)

// Request is one structured-output call: the model must answer with a JSON object matching
// Schema (a JSON Schema object).
type Request struct {
	System    string
	Prompt    string
	Name      string         // the output's name, e.g. "knowledge_items"
	Schema    map[string]any // JSON Schema of the answer
	MaxTokens int
}

// Provider calls a language model. Structured returns the answer's JSON object, undecoded; the
// caller decodes it strictly.
type Provider interface {
	Structured(ctx context.Context, req Request) (json.RawMessage, error)
}

// ErrTruncated means the answer hit max_tokens: the caller should send less.
var ErrTruncated = errors.New("the model's answer was cut at max_tokens")

// Defaults of the Anthropic provider.
const (
	DefaultAnthropicURL   = "https://api.anthropic.com"
	DefaultAnthropicModel = "claude-haiku-4-5"
	anthropicVersion      = "2023-06-01"
)

// NewProvider returns the provider configured in ai:, or nil when none is (no api_key).
func NewProvider(ai config.AI, logger *slog.Logger) (Provider, error) {
	switch strings.ToLower(ai.Provider) {
	case "", "anthropic":
		if ai.APIKey == "" {
			return nil, nil
		}
		return &Anthropic{BaseURL: ai.BaseURL, Model: ai.Model, APIKey: ai.APIKey, Logger: logger}, nil
	default:
		return nil, fmt.Errorf("ai.provider %q: the supported provider is anthropic", ai.Provider)
	}
}

// Anthropic calls the Anthropic Messages API (POST /v1/messages). The answer is forced through
// a single tool whose input_schema is the requested schema, so it arrives as a tool_use block's
// input object.
type Anthropic struct {
	BaseURL string // default https://api.anthropic.com
	Model   string // default claude-haiku-4-5
	APIKey  string
	Client  *http.Client

	Attempts int           // tries per call on 429, 529 and 5xx (default 4)
	Backoff  time.Duration // first delay, doubled each time (default 2s)
	MaxWait  time.Duration // longest single wait, also for retry-after (default 1 min)
	Logger   *slog.Logger
}

// APIError is a reply other than 200 from the Messages API.
type APIError struct {
	Status     int
	Type       string // error.type, e.g. rate_limit_error, overloaded_error
	Message    string
	Code       string // error.details.error_code, when given
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("anthropic: %d %s: %s", e.Status, e.Type, e.Message)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	return s
}

// Retryable: rate limits (except a reached spend limit, which waiting a minute does not fix),
// overloads (529) and server errors.
func (e *APIError) Retryable() bool {
	if e.Status == http.StatusTooManyRequests {
		return e.Code != "enforced_spend_limit_reached"
	}
	return e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusConflict
}

// Structured sends req and returns the tool_use input object, retrying with backoff.
func (a *Anthropic) Structured(ctx context.Context, req Request) (json.RawMessage, error) {
	attempts, delay, maxWait := a.Attempts, a.Backoff, a.MaxWait
	if attempts <= 0 {
		attempts = 4
	}
	if delay <= 0 {
		delay = 2 * time.Second
	}
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	logger := a.Logger
	if logger == nil {
		logger = slog.Default()
	}
	body, err := a.body(req)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		out, err := a.call(ctx, body, req.Name)
		var ae *APIError
		retry := errors.As(err, &ae) && ae.Retryable() || isNetError(err)
		if err == nil || !retry || attempt >= attempts || ctx.Err() != nil {
			return out, err
		}
		wait := delay + rand.N(delay/2+1) // jitter, so many servers do not retry in step
		if ae != nil && ae.RetryAfter > 0 {
			wait = ae.RetryAfter
		}
		wait = min(wait, maxWait)
		logger.Warn("model call failed, retrying", "attempt", attempt, "in", wait, "error", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		delay *= 2
	}
}

func isNetError(err error) bool {
	var ae *APIError
	return err != nil && !errors.As(err, &ae) && !errors.Is(err, ErrTruncated) && !errors.Is(err, errBadReply) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

var errBadReply = errors.New("anthropic: unexpected reply")

func (a *Anthropic) body(req Request) ([]byte, error) {
	model := a.Model
	if model == "" {
		model = DefaultAnthropicModel
	}
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = 4096
	}
	return json.Marshal(map[string]any{
		"model":      model,
		"max_tokens": maxTokens,
		"system":     req.System,
		"messages":   []map[string]any{{"role": "user", "content": req.Prompt}},
		"tools": []map[string]any{{
			"name":         req.Name,
			"description":  "Record the answer. Always call this tool exactly once.",
			"input_schema": req.Schema,
		}},
		"tool_choice": map[string]any{"type": "tool", "name": req.Name},
	})
}

func (a *Anthropic) call(ctx context.Context, body []byte, tool string) (json.RawMessage, error) {
	base := strings.TrimRight(a.BaseURL, "/")
	if base == "" {
		base = DefaultAnthropicURL
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("x-api-key", a.APIKey)
	hr.Header.Set("anthropic-version", anthropicVersion)
	hr.Header.Set("content-type", "application/json")
	client := a.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("anthropic: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("anthropic: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(resp, raw)
	}
	var msg struct {
		Content []struct {
			Type  string          `json:"type"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		} `json:"content"`
		StopReason string `json:"stop_reason"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadReply, err)
	}
	if msg.StopReason == "max_tokens" {
		return nil, ErrTruncated
	}
	for _, c := range msg.Content {
		if c.Type == "tool_use" && c.Name == tool {
			return c.Input, nil
		}
	}
	return nil, fmt.Errorf("%w: no %s tool_use block (stop_reason %q)", errBadReply, tool, msg.StopReason)
}

func apiError(resp *http.Response, raw []byte) error {
	e := &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
	var body struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Details struct {
				ErrorCode string `json:"error_code"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error.Type != "" {
		e.Type, e.Message, e.Code = body.Error.Type, body.Error.Message, body.Error.Details.ErrorCode
	}
	if len(e.Message) > 300 {
		e.Message = e.Message[:300] + "…"
	}
	if s, err := strconv.ParseFloat(resp.Header.Get("retry-after"), 64); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s * float64(time.Second))
	}
	return e
}
