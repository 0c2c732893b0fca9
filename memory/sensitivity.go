package memory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// secretPatterns find credentials by their shape; any match holds an item back.
var secretPatterns = []struct {
	what string
	re   *regexp.Regexp
}{
	{"a private key", regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY`)},
	{"an AWS access key", regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"a GitHub token", regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})`)},
	{"a Slack token", regexp.MustCompile(`\bxox[abprs]-[A-Za-z0-9-]{10,}`)},
	{"an API key", regexp.MustCompile(`\b(sk-ant-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9_-]{32,}|AIza[0-9A-Za-z_-]{35})`)},
	{"a Keboola token", regexp.MustCompile(`\b\d{1,6}-\d{3,10}-[A-Za-z0-9]{30,}\b`)},
	{"a JSON Web Token", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.`)},
	{"a bearer token", regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}`)},
	{"credentials in a URL", regexp.MustCompile(`[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@`)},
	{"a password or secret", regexp.MustCompile(`(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\b["']?\s*[:=]\s*["']?[^\s"']{6,}`)},
	{"an email address", regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)},
}

var (
	ipv4Pattern     = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b`)
	hostnamePattern = regexp.MustCompile(`(?i)\b[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+\b`)
	internalSuffix  = []string{".internal", ".local", ".localdomain", ".corp", ".lan", ".intranet", ".intra", ".private", ".home.arpa"}
)

// screen runs the deterministic checks: credential shapes, email addresses, IP addresses
// other than loopback or documentation ranges, and hosts of an internal domain. It returns
// why the text is unsafe, or "".
func screen(text string, internalDomains []string) string {
	for _, p := range secretPatterns {
		if p.re.MatchString(text) {
			return "contains " + p.what
		}
	}
	for _, m := range ipv4Pattern.FindAllString(text, -1) {
		ip, err := netip.ParseAddr(m)
		if err != nil {
			continue // a version number like 1.2.3.400
		}
		if !ip.IsLoopback() && !ip.IsUnspecified() && !documentationIP(ip) {
			return "contains an IP address (" + m + ")"
		}
	}
	for _, h := range hostnamePattern.FindAllString(text, -1) {
		h = strings.ToLower(h)
		for _, s := range internalSuffix {
			if strings.HasSuffix(h, s) {
				return "contains an internal host name (" + h + ")"
			}
		}
		for _, d := range internalDomains {
			d = strings.ToLower(strings.TrimPrefix(d, "@"))
			if d != "" && strings.HasSuffix(h, "."+d) {
				return "contains a host of the company's domain (" + h + ")"
			}
		}
	}
	return ""
}

var docNets = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24"),
}

func documentationIP(ip netip.Addr) bool {
	for _, n := range docNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

var sensitivitySchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"safe":   map[string]any{"type": "boolean"},
		"reason": map[string]any{"type": "string"},
	},
	"required":             []string{"safe"},
	"additionalProperties": false,
}

const sensitivitySystem = `You review knowledge items before they are shared with every analyst of a company.
An item is unsafe if it contains or reveals any of: secrets or credentials (passwords, tokens, keys,
connection strings), personal data about identifiable people (names with private details, emails,
phone numbers, salaries, health), internal URLs, host names or IP addresses, confidential business
information that not every employee may see, or negative remarks about people. When in doubt, it is unsafe.
Answer with safe=true only when none of these apply; otherwise give a short reason.`

// checkSensitive decides whether an item may be published: the deterministic checks first,
// then the model. Any doubt (a match, an error, an unreadable answer) holds the item back: it
// returns a non-empty reason.
func (s *Service) checkSensitive(ctx context.Context, it Candidate) string {
	text := it.Title + "\n" + it.Content + "\n" + strings.Join(it.Tags, " ")
	if why := screen(text, s.Opts.InternalDomains); why != "" {
		return why
	}
	if s.Provider == nil {
		return "no model configured for the sensitivity check"
	}
	prompt, _ := json.Marshal(map[string]any{"title": it.Title, "content": it.Content, "category": it.Category, "tags": it.Tags})
	raw, err := s.Provider.Structured(ctx, Request{System: sensitivitySystem, Name: "sensitivity_verdict",
		Prompt: "Review this item:\n" + string(prompt), Schema: sensitivitySchema, MaxTokens: 256})
	if err != nil {
		return "sensitivity check failed: " + err.Error()
	}
	var verdict struct {
		Safe   *bool  `json:"safe"`
		Reason string `json:"reason"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&verdict); err != nil || verdict.Safe == nil {
		return fmt.Sprintf("sensitivity check answer unreadable: %.100s", raw)
	}
	if !*verdict.Safe {
		if verdict.Reason == "" {
			verdict.Reason = "unspecified"
		}
		return "model flagged it: " + verdict.Reason
	}
	return ""
}
