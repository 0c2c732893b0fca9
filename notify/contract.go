package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Result is what a script prints on stdout: one JSON object.
type Result struct {
	Notify    bool            `json:"notify"`
	Title     string          `json:"title,omitempty"`
	Message   string          `json:"message,omitempty"`
	ImagePath string          `json:"image_path,omitempty"`
	Cooldown  string          `json:"cooldown,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"` // kept for the inbox's detail view; never sent
}

// DefaultCooldown applies when a script names none (or one that cannot be read).
const DefaultCooldown = time.Hour

// ErrNoOutput is a script that printed nothing.
var ErrNoOutput = errors.New("the script printed nothing on stdout (it must print one JSON object)")

// ParseResult reads a script's stdout. Diagnostics belong on stderr; anything but exactly one
// JSON object with a boolean "notify" is an error that names the problem.
func ParseResult(stdout []byte) (Result, error) {
	r, err := parseResult(stdout)
	if err != nil {
		return Result{}, err
	}
	return r, nil
}

func parseResult(stdout []byte) (Result, error) {
	out := bytes.TrimSpace(stdout)
	if len(out) == 0 {
		return Result{}, ErrNoOutput
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&fields); err != nil {
		return Result{}, fmt.Errorf("stdout is not one JSON object: %v (starts with %q)", err, excerpt(out, 60))
	}
	if dec.More() {
		return Result{}, fmt.Errorf("stdout has more than one JSON value; print one object and send diagnostics to stderr")
	}
	if fields == nil {
		return Result{}, fmt.Errorf("stdout is null, not a JSON object")
	}
	var r Result
	raw, ok := fields["notify"]
	if !ok {
		return r, fmt.Errorf(`the JSON object has no "notify" field (true to alert, false to stay silent)`)
	}
	if err := json.Unmarshal(raw, &r.Notify); err != nil {
		return r, fmt.Errorf(`"notify" must be true or false, not %s`, excerpt(raw, 30))
	}
	for key, dst := range map[string]*string{"title": &r.Title, "message": &r.Message, "image_path": &r.ImagePath} {
		if v, ok := fields[key]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, dst); err != nil {
				return r, fmt.Errorf("%q must be a string, not %s", key, excerpt(v, 30))
			}
		}
	}
	if v, ok := fields["cooldown"]; ok && string(v) != "null" {
		var s string
		var n float64
		switch {
		case json.Unmarshal(v, &s) == nil:
			r.Cooldown = s
		case json.Unmarshal(v, &n) == nil && n >= 0:
			r.Cooldown = strconv.FormatInt(int64(n), 10) + "s" // seconds, where the original crashed
		default:
			return r, fmt.Errorf(`"cooldown" must be a string like "6h" or a number of seconds, not %s`, excerpt(v, 30))
		}
	}
	r.Data = fields["data"]
	return r, nil
}

func excerpt(b []byte, n int) string {
	s := string(b)
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return s
}

var cooldownRE = regexp.MustCompile(`^(\d+)(s|m|h|d)$`)

// ParseCooldown reads a cooldown as the original did: "15m", "6h", "1d" (any number of
// s, m, h or d; "0m" means none); anything else means DefaultCooldown.
func ParseCooldown(s string) time.Duration {
	m := cooldownRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return DefaultCooldown
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > 10*365*24*3600 {
		return DefaultCooldown
	}
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit
}

// Text is the message as Telegram shows it: "*title*\nmessage" in legacy Markdown, without the
// part that is missing.
func Text(title, message string) string {
	switch {
	case title != "" && message != "":
		return "*" + title + "*\n" + message
	case title != "":
		return "*" + title + "*"
	}
	return message
}

// Cut shortens s to at most limit characters (code points), ending in "..." when cut.
func Cut(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit-3]) + "..."
}
