package jira

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
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// ErrNotFound is returned for an issue Jira does not have (or the token may not see).
var ErrNotFound = errors.New("jira: not found")

// ErrTooLarge is returned for an attachment over the download limit.
var ErrTooLarge = errors.New("jira: attachment over the size limit")

// StatusError is an unexpected HTTP reply.
type StatusError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("jira: %s %s: HTTP %d: %s", e.Method, e.URL, e.Status, e.Body)
}

// SLAFields are the JSM SLA fields the service account reads (first response, time to
// resolution); the SLA poll adds the status fields it heals.
var SLAFields = []string{"customfield_10328", "customfield_10161"}

// Client calls Jira Cloud's REST API v3 with Basic auth (email + API token). SLA fields are read
// with a second, service account through the cloud gateway, because personal tokens without a
// JSM agent licence get error objects for them.
type Client struct {
	BaseURL      string // https://{domain}
	Email, Token string
	SLABaseURL   string // https://api.atlassian.com; /ex/jira/{CloudID}/rest/api/3 is appended
	CloudID      string
	SLAEmail     string
	SLAToken     string

	HTTP         *http.Client  // API calls; default: 30 s timeout per request
	Downloads    *http.Client  // attachment downloads; default: 10 min per file
	MaxRetries   int           // retries of a 429, 5xx or network error; default 5
	MaxRetryWait time.Duration // cap on one wait, including a server's Retry-After; default 60 s
	PageSize     int           // comments, changelog and search pages; default 100
	Logger       *slog.Logger
}

// NewClient builds a client from the jira block of instance.yaml.
func NewClient(c config.Jira, logger *slog.Logger) *Client {
	if logger == nil {
		logger = slog.Default()
	}
	return &Client{
		BaseURL: c.BaseURL, Email: c.Email, Token: c.APIToken,
		SLABaseURL: c.SLABaseURL, CloudID: c.CloudID, SLAEmail: c.SLAEmail, SLAToken: c.SLAAPIToken,
		Logger: logger,
	}
}

// Configured reports whether the personal-token API is usable.
func (c *Client) Configured() bool { return c.BaseURL != "" && c.Email != "" && c.Token != "" }

// SLAConfigured reports whether the service account for SLA fields is set up.
func (c *Client) SLAConfigured() bool {
	return c.SLABaseURL != "" && c.CloudID != "" && c.SLAEmail != "" && c.SLAToken != ""
}

// transport keeps connections to Jira open for the fetch stage's parallel calls (the default
// keeps 2 idle connections per host, so most calls would dial again).
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}()

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: transport}
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func (c *Client) pageSize() int {
	if c.PageSize > 0 {
		return c.PageSize
	}
	return 100
}

// request is one API call, rebuilt for every attempt.
type request struct {
	method, url string
	body        []byte
	user, pass  string
}

// do sends req, retrying 429 and 503 after Retry-After (capped), other 5xx and network errors
// with backoff. The caller closes the body of the returned 2xx or 404 response.
func (c *Client) do(ctx context.Context, hc *http.Client, req request) (*http.Response, error) {
	retries := c.MaxRetries
	if retries == 0 {
		retries = 5
	}
	maxWait := c.MaxRetryWait
	if maxWait == 0 {
		maxWait = 60 * time.Second
	}
	backoff := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if req.body != nil {
			body = bytes.NewReader(req.body)
		}
		hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
		if err != nil {
			return nil, err
		}
		hr.SetBasicAuth(req.user, req.pass)
		hr.Header.Set("Accept", "application/json")
		if req.body != nil {
			hr.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(hr)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			wait = backoff
		case resp.StatusCode < 300 || resp.StatusCode == http.StatusNotFound:
			return resp, nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			wait = retryAfter(resp.Header.Get("Retry-After"), backoff)
			err = statusError(req, resp)
		case resp.StatusCode >= 500:
			wait = backoff
			err = statusError(req, resp)
		default:
			return nil, statusError(req, resp)
		}
		if attempt >= retries {
			return nil, err
		}
		wait = min(wait, maxWait)
		c.logger().Warn("jira: retrying", "method", req.method, "url", redact(req.url), "wait", wait, "error", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, maxWait)
	}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); def when absent or bad.
func retryAfter(h string, def time.Duration) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return def + rand.N(def/2+1)
	}
	if s, err := strconv.ParseFloat(h, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if at, err := http.ParseTime(h); err == nil {
		return max(time.Until(at), 0)
	}
	return def
}

func statusError(req request, resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &StatusError{Method: req.method, URL: redact(req.url), Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
}

// redact drops the query (JQL, tokens in presigned URLs) from a URL for messages.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// getJSON GETs an API URL into v; ErrNotFound on 404.
func (c *Client) getJSON(ctx context.Context, u, user, pass string, v any) error {
	resp, err := c.do(ctx, c.httpClient(), request{method: http.MethodGet, url: u, user: user, pass: pass})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	return decodeJSON(resp.Body, v, u)
}

func decodeJSON(r io.Reader, v any, u string) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("jira: %s: bad JSON reply: %w", redact(u), err)
	}
	return nil
}

func (c *Client) api(path string, q url.Values) string {
	u := c.BaseURL + "/rest/api/3" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Issue fetches an issue with every field, its rendered fields and its whole changelog and
// comment list: when Jira truncates the embedded lists, the rest is paged in.
// The returned issue may carry another key than asked for when the issue was moved.
func (c *Client) Issue(ctx context.Context, key string) (Issue, error) {
	if !c.Configured() {
		return nil, errors.New("jira: base_url, email and api_token are not all set")
	}
	var issue Issue
	q := url.Values{"expand": {"renderedFields,changelog"}, "fields": {"*all"}}
	if err := c.getJSON(ctx, c.api("/issue/"+url.PathEscape(key), q), c.Email, c.Token, &issue); err != nil {
		return nil, err
	}
	ref := strOf(issue["id"])
	if ref == nil {
		return nil, fmt.Errorf("jira: issue %s: reply has no id", key)
	}
	fields, _ := issue["fields"].(map[string]any)
	if cm, ok := fields["comment"].(map[string]any); ok {
		total, _ := toInt(cm["total"])
		if int(total) > len(List(cm["comments"])) {
			all, err := c.pages(ctx, "/issue/"+*ref+"/comment", "comments", url.Values{"orderBy": {"created"}})
			if err != nil {
				return nil, fmt.Errorf("jira: comments of %s: %w", key, err)
			}
			cm["comments"], cm["startAt"], cm["maxResults"], cm["total"] = all, 0, len(all), len(all)
		}
	}
	if cl, ok := issue["changelog"].(map[string]any); ok {
		total, _ := toInt(cl["total"])
		if int(total) > len(List(cl["histories"])) {
			all, err := c.pages(ctx, "/issue/"+*ref+"/changelog", "values", nil)
			if err != nil {
				return nil, fmt.Errorf("jira: changelog of %s: %w", key, err)
			}
			cl["histories"], cl["startAt"], cl["maxResults"], cl["total"] = all, 0, len(all), len(all)
		}
	}
	return issue, nil
}

// pages collects a startAt/maxResults paged list.
func (c *Client) pages(ctx context.Context, path, field string, q url.Values) ([]any, error) {
	var all []any
	for {
		pq := url.Values{"startAt": {strconv.Itoa(len(all))}, "maxResults": {strconv.Itoa(c.pageSize())}}
		for k, v := range q {
			pq[k] = v
		}
		var page map[string]any
		if err := c.getJSON(ctx, c.api(path, pq), c.Email, c.Token, &page); err != nil {
			return nil, err
		}
		items := List(page[field])
		all = append(all, items...)
		total, hasTotal := toInt(page["total"])
		last, _ := page["isLast"].(bool)
		if len(items) == 0 || last || hasTotal && len(all) >= int(total) {
			return all, nil
		}
	}
}

// RemoteLinks fetches an issue's remote links.
func (c *Client) RemoteLinks(ctx context.Context, key string) ([]any, error) {
	var links []any
	err := c.getJSON(ctx, c.api("/issue/"+url.PathEscape(key)+"/remotelink", nil), c.Email, c.Token, &links)
	if links == nil && err == nil {
		links = []any{}
	}
	return links, err
}

// SLA fetches fields of an issue through the service account on the cloud gateway and returns
// the issue's fields object (only the ones asked for, as Jira sends them).
func (c *Client) SLA(ctx context.Context, key string, fields []string) (map[string]any, error) {
	if !c.SLAConfigured() {
		return nil, errors.New("jira: sla_email, sla_api_token and cloud_id are not all set")
	}
	u := c.SLABaseURL + "/ex/jira/" + url.PathEscape(c.CloudID) + "/rest/api/3/issue/" + url.PathEscape(key) +
		"?" + url.Values{"fields": {strings.Join(fields, ",")}}.Encode()
	var issue map[string]any
	if err := c.getJSON(ctx, u, c.SLAEmail, c.SLAToken, &issue); err != nil {
		return nil, err
	}
	f, _ := issue["fields"].(map[string]any)
	if f == nil {
		f = map[string]any{}
	}
	return f, nil
}

// Search pages through the issue keys a JQL query matches (POST /rest/api/3/search/jql with
// nextPageToken), calling fn with each page's keys.
func (c *Client) Search(ctx context.Context, jql string, fn func(keys []string) error) error {
	token := ""
	for {
		body := map[string]any{"jql": jql, "maxResults": c.pageSize(), "fields": []string{"key"}}
		if token != "" {
			body["nextPageToken"] = token
		}
		b, _ := json.Marshal(body)
		u := c.api("/search/jql", nil)
		resp, err := c.do(ctx, c.httpClient(), request{method: http.MethodPost, url: u, body: b, user: c.Email, pass: c.Token})
		if err != nil {
			return err
		}
		var page struct {
			Issues []struct {
				Key string `json:"key"`
			} `json:"issues"`
			NextPageToken string `json:"nextPageToken"`
			IsLast        bool   `json:"isLast"`
		}
		if resp.StatusCode == http.StatusNotFound {
			resp.Body.Close()
			return &StatusError{Method: http.MethodPost, URL: u, Status: http.StatusNotFound}
		}
		err = decodeJSON(resp.Body, &page, u)
		resp.Body.Close()
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(page.Issues))
		for _, is := range page.Issues {
			keys = append(keys, is.Key)
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
		if len(keys) == 0 || page.NextPageToken == "" || page.IsLast {
			return nil
		}
		token = page.NextPageToken
	}
}

// Download streams an attachment's content to dst (atomically: a partial download is never
// visible) and returns its size. Over limit bytes it stops with ErrTooLarge.
func (c *Client) Download(ctx context.Context, contentURL, dst string, limit int64) (int64, error) {
	hc := c.Downloads
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Minute, Transport: transport}
	}
	resp, err := c.do(ctx, hc, request{method: http.MethodGet, url: contentURL, user: c.Email, pass: c.Token})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, ErrNotFound
	}
	if resp.ContentLength > limit {
		return 0, ErrTooLarge
	}
	var n int64
	err = store.WriteFileAtomic(dst, 0o640, func(w io.Writer) error {
		n, err = io.Copy(w, io.LimitReader(resp.Body, limit+1))
		if err == nil && n > limit {
			err = ErrTooLarge
		}
		return err
	})
	return n, err
}
