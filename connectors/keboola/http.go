package keboola

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// APIError is a non-success HTTP reply from Keboola or a cloud store. Message is the service's own
// text (Keboola's JSON `error`/`message`, or the XML `Code`/`Message` of S3, GCS and Azure).
type APIError struct {
	Method  string
	Where   string // host and path, never the query (it may hold signatures)
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Where, e.Status)
	if t := http.StatusText(e.Status); t != "" {
		s += " " + t
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	return s
}

// retryable marks an error worth another attempt (a broken or short download).
type retryable struct{ error }

func (r retryable) Unwrap() error { return r.error }

// call is one logical HTTP request, repeated on transient failures.
type call struct {
	method string
	url    string
	header http.Header
	body   string // form-encoded body for POST
	// stream: the response body may take long (a download); instead of a total deadline the
	// attempt fails when no byte arrives for StallTimeout.
	stream bool
	// read consumes a 2xx response. Errors wrapped in retryable, and body read failures, are retried.
	read func(resp *http.Response, body io.Reader) error
	// sign, when set, authenticates each attempt (S3 SigV4 needs a fresh date per attempt).
	sign func(req *http.Request) error
	// secrets the request carries besides the storage token, kept out of logs.
	secrets []string
}

// do runs the call with per-attempt timeouts and retries with exponential backoff and jitter on
// connection errors, 5xx and 429 (honouring Retry-After). Other 4xx fail at once.
func (c *Client) do(ctx context.Context, k call) error {
	for attempt := 0; ; attempt++ {
		wait, err := c.attempt(ctx, k)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if wait < 0 || attempt >= c.opt.MaxRetries {
			return err
		}
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		c.log.Warn("keboola request failed, retrying", "method", k.method, "where", where(k.url),
			"attempt", attempt+1, "wait", wait, "err", redactSecrets(err, append([]string{c.token}, k.secrets...)...))
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// attempt makes one request. On failure wait < 0 means do not retry, 0 retry after the
// backoff, > 0 retry after that long.
func (c *Client) attempt(ctx context.Context, k call) (time.Duration, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timer *time.Timer
	if k.stream {
		timer = time.AfterFunc(c.opt.StallTimeout, cancel)
	} else {
		timer = time.AfterFunc(c.opt.RequestTimeout, cancel)
	}
	defer timer.Stop()

	var body io.Reader
	if k.body != "" {
		body = strings.NewReader(k.body)
	}
	req, err := http.NewRequestWithContext(actx, k.method, k.url, body)
	if err != nil {
		return -1, fmt.Errorf("bad request URL for %s", where(k.url))
	}
	for name, vals := range k.header {
		req.Header[name] = vals
	}
	if k.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if k.sign != nil {
		if err := k.sign(req); err != nil {
			return -1, err
		}
	}
	resp, err := c.opt.HTTPClient.Do(req)
	if err != nil {
		return 0, c.transportError(k, err, timer)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		apiErr := readAPIError(k.method, k.url, resp)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return c.retryAfter(resp.Header.Get("Retry-After"), time.Now()), apiErr
		}
		return -1, apiErr
	}
	var r io.Reader = resp.Body
	if k.stream {
		r = &stallReader{r: resp.Body, timer: timer, d: c.opt.StallTimeout}
	}
	if err := k.read(resp, r); err != nil {
		var rt retryable
		if errors.As(err, &rt) {
			return 0, err
		}
		if ctx.Err() == nil && (actx.Err() != nil || isBodyReadError(err)) {
			return 0, c.transportError(k, err, timer)
		}
		return -1, err
	}
	return 0, nil
}

// transportError describes a failed exchange without the URL's query.
func (c *Client) transportError(k call, err error, timer *time.Timer) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.Canceled) && !timer.Stop() {
		if k.stream {
			return fmt.Errorf("%s %s: no data for %s", k.method, where(k.url), c.opt.StallTimeout)
		}
		return fmt.Errorf("%s %s: no reply within %s", k.method, where(k.url), c.opt.RequestTimeout)
	}
	return fmt.Errorf("%s %s: %w", k.method, where(k.url), err)
}

// isBodyReadError tells a connection broken mid-body from a decoding problem.
func isBodyReadError(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// stallReader pushes the stall deadline forward on every read that returns data.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	return n, err
}

// backoff is RetryBase·2^attempt with full jitter in its upper half, capped by RetryMax.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opt.RetryBase << min(attempt, 20)
	if d <= 0 || d > c.opt.RetryMax {
		d = c.opt.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped by RetryMax.
// It returns 0 (use the backoff) when the header is absent or unreadable.
func (c *Client) retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(h); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	if d <= 0 {
		return time.Millisecond // "retry now": still a real wait so the loop is not hot
	}
	return min(d, c.opt.RetryMax)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// where is host+path of a URL, for messages; queries may carry signatures and are left out.
func where(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Host + u.EscapedPath()
}

// readAPIError turns an error reply into an APIError with the service's own message.
func readAPIError(method, rawURL string, resp *http.Response) *APIError {
	e := &APIError{Method: method, Where: where(rawURL), Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	text := strings.TrimSpace(string(b))
	if text == "" {
		return e
	}
	var j struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Code    json.RawMessage `json:"code"`
	}
	if json.Unmarshal(b, &j) == nil {
		var s string
		if json.Unmarshal(j.Error, &s) == nil {
			e.Message = s
		} else {
			var inner struct { // GCS JSON API: {"error": {"code": 401, "message": "..."}}
				Message string `json:"message"`
			}
			if json.Unmarshal(j.Error, &inner) == nil {
				e.Message = inner.Message
			}
		}
		if j.Message != "" && j.Message != e.Message {
			if e.Message != "" {
				e.Message += ": "
			}
			e.Message += j.Message
		}
		e.Code = strings.Trim(string(j.Code), `"`)
		if e.Message != "" || e.Code != "" {
			return e
		}
	}
	var x struct { // S3, GCS XML and Azure Blob errors
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(b, &x) == nil && (x.Code != "" || x.Message != "") {
		e.Code, e.Message = x.Code, x.Message
		return e
	}
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	e.Message = text
	return e
}

// redact removes the storage token from an error's text, keeping the error chain for errors.Is.
func (c *Client) redact(err error) error {
	return redactSecrets(err, c.token)
}

func redactSecrets(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if len(s) >= 4 {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (r *redactedError) Error() string { return r.msg }
func (r *redactedError) Unwrap() error { return r.err }
