package jira

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Issue is a raw issue as stored in issues/<KEY>.json: the API response (decoded with
// json.Number for numbers) plus the server's underscore keys.
type Issue = map[string]any

// Keys the server adds to a raw issue.
const (
	KeySyncedAt    = "_synced_at"    // when it was fetched (UTC, ISO with microseconds)
	KeyRemoteLinks = "_remote_links" // the remote-link list
	KeyDeletedAt   = "_deleted_at"   // tombstone: deleted in Jira
	KeyMovedTo     = "_moved_to"     // tombstone: the issue now has this key
)

// DefaultCustomFields are the reference's custom fields by column (SLA fields by their prefix).
var DefaultCustomFields = map[string]string{
	"request_type":             "customfield_10010",
	"request_status":           "customfield_10010",
	"severity":                 "customfield_10004",
	"triage":                   "customfield_10323",
	"configuration_item":       "customfield_10511",
	"participants":             "customfield_10156",
	"organizations":            "customfield_10002",
	"spam":                     "customfield_10365",
	"context":                  "customfield_10330",
	"custom_url":               "customfield_10325",
	"slack_link":               "customfield_10350",
	"technical_issue_category": "customfield_10676",
	"email_address":            "customfield_10475",
	"satisfaction":             "customfield_10157",
	"first_response":           "customfield_10328",
	"time_to_resolution":       "customfield_10161",
	"l3_team":                  "customfield_11831",
}

// Transformer turns raw issues into table rows.
type Transformer struct {
	// Domain names the site in issue_url (https://{Domain}/browse/{key}).
	Domain string
	// Fields maps column (or SLA prefix) to custom field id: the defaults with the configured
	// jira.custom_fields over them.
	Fields map[string]string
	// Extra are configured columns that are not the reference's, in column order.
	Extra []string
	// AttachmentsDir holds downloaded attachments as <KEY>/<id>_<name>; local_path is filled
	// for the files present there.
	AttachmentsDir string
}

// NewTransformer builds a transformer with custom fields configured over the defaults.
func NewTransformer(domain string, custom map[string]string, attachmentsDir string) *Transformer {
	t := &Transformer{Domain: domain, Fields: map[string]string{}, AttachmentsDir: attachmentsDir}
	for k, v := range DefaultCustomFields {
		t.Fields[k] = v
	}
	for k, v := range custom {
		if _, known := DefaultCustomFields[k]; !known {
			t.Extra = append(t.Extra, k)
		}
		t.Fields[k] = v
	}
	sort.Strings(t.Extra)
	if t.Domain == "" {
		t.Domain = "your-org.atlassian.net"
	}
	return t
}

// Tables are the six tables as this transformer writes them.
func (t *Transformer) Tables() []Table { return Tables(t.Extra) }

// IsTombstone reports whether a raw issue was deleted or moved to another key.
func IsTombstone(issue Issue) bool {
	return issue[KeyDeletedAt] != nil || issue[KeyMovedTo] != nil
}

// Transform returns the rows of one raw issue. A tombstone has no rows.
func (t *Transformer) Transform(issue Issue) (Rows, error) {
	rows := Rows{}
	if IsTombstone(issue) {
		return rows, nil
	}
	key := strOf(issue["key"])
	if key == nil {
		return nil, fmt.Errorf("raw issue has no key")
	}
	k := *key
	f, _ := issue["fields"].(map[string]any)
	custom := func(col string) any { return f[t.Fields[col]] }

	created := ParseTime(f["created"])
	fr := slaMetrics(custom("first_response"))
	ttr := slaMetrics(custom("time_to_resolution"))
	var satisfaction any
	if m, ok := custom("satisfaction").(map[string]any); ok {
		satisfaction = intVal(m["rating"])
	}
	description := ADFText(f["description"])
	row := Row{
		k, str(issue["id"]), fmt.Sprintf("https://%s/browse/%s", t.Domain, k),
		str(f["summary"]), description,
		str(Field(f, "issuetype", "name")), str(Field(f, "status", "name")), str(Field(f, "status", "statusCategory", "name")),
		str(Field(f, "priority", "name")), str(Field(f, "resolution", "name")),
		str(Field(f, "project", "key")), str(Field(f, "project", "name")),
		str(Field(f, "creator", "emailAddress")), str(Field(f, "creator", "displayName")),
		str(Field(f, "reporter", "emailAddress")), str(Field(f, "reporter", "displayName")),
		str(Field(f, "assignee", "emailAddress")), str(Field(f, "assignee", "displayName")),
		timeVal(created), timeVal(ParseTime(f["updated"])), timeVal(ParseTime(f["resolutiondate"])),
		str(f["duedate"]), labelsJSON(f["labels"]),
		int64(length(f["attachment"])), commentTotal(f), int64(length(f["issuelinks"])),
		str(Field(custom("request_type"), "requestType", "name")), str(Field(custom("request_status"), "currentStatus", "status")),
		optionValue(custom("severity")), pyJSON(optionList(custom("triage"))), pyJSON(optionList(custom("configuration_item"))),
		pyJSON(participants(custom("participants"))), pyJSON(optionList(custom("organizations"))),
		optionValue(custom("spam")), nonEmpty(ADFText(custom("context"))), str(custom("custom_url")),
		optionValue(custom("slack_link")), optionValue(custom("technical_issue_category")), optionValue(custom("email_address")),
		satisfaction,
		fr.breached, fr.goal, fr.elapsed, ttr.breached, ttr.goal, ttr.elapsed,
		optionValue(custom("l3_team")), str(issue[KeySyncedAt]), k + ".json",
	}
	for _, col := range t.Extra {
		row = append(row, genericValue(f[t.Fields[col]]))
	}
	rows["issues"] = []Row{row}

	for _, c := range List(Field(f, "comment", "comments")) {
		body := ADFText(Field(c, "body"))
		rows["comments"] = append(rows["comments"], Row{
			str(Field(c, "id")), k, str(Field(c, "author", "emailAddress")), str(Field(c, "author", "displayName")), body,
			timeVal(ParseTime(Field(c, "created"))), timeVal(ParseTime(Field(c, "updated"))), str(Field(c, "updateAuthor", "emailAddress")),
		})
	}
	for _, a := range List(f["attachment"]) {
		var local, hier any
		id, name := strOf(Field(a, "id")), strOf(Field(a, "filename"))
		if id != nil && name != nil && t.AttachmentsDir != "" {
			rel := AttachmentPath(k, *id, *name)
			if _, err := os.Stat(filepath.Join(t.AttachmentsDir, rel)); err == nil {
				local, hier = filepath.ToSlash(filepath.Join("attachments", rel)), hierarchicalPath(k, *id, *name)
			}
		}
		rows["attachments"] = append(rows["attachments"], Row{
			str(Field(a, "id")), k, str(Field(a, "filename")), local, hier, intVal(Field(a, "size")), str(Field(a, "mimeType")), str(Field(a, "author", "emailAddress")),
			timeVal(ParseTime(Field(a, "created"))), str(Field(a, "content")), str(Field(a, "thumbnail")),
		})
	}
	for _, h := range List(Field(issue, "changelog", "histories")) {
		for _, it := range List(Field(h, "items")) {
			rows["changelog"] = append(rows["changelog"], Row{
				str(Field(h, "id")), k, str(Field(h, "author", "emailAddress")), str(Field(h, "author", "displayName")),
				str(Field(it, "field")), str(Field(it, "fieldtype")), str(Field(it, "fromString")), str(Field(it, "toString")),
				timeVal(ParseTime(Field(h, "created"))),
			})
		}
	}
	for _, l := range List(f["issuelinks"]) {
		var dir string
		var other any
		if o := Field(l, "inwardIssue"); o != nil {
			dir, other = "inward", o
		} else if o := Field(l, "outwardIssue"); o != nil {
			dir, other = "outward", o
		} else {
			continue
		}
		rows["issuelinks"] = append(rows["issuelinks"], Row{
			k, str(Field(l, "id")), str(Field(l, "type", "name")), dir, str(Field(other, "key")),
			str(Field(other, "fields", "summary")), str(Field(other, "fields", "status", "name")), str(Field(other, "fields", "priority", "name")),
		})
	}
	for _, r := range List(issue[KeyRemoteLinks]) {
		id := str(Field(r, "id"))
		if id == nil {
			id = ""
		}
		rows["remote_links"] = append(rows["remote_links"], Row{
			k, id, str(Field(r, "object", "url")), str(Field(r, "object", "title")),
			str(Field(r, "application", "name")), str(Field(r, "application", "type")),
		})
	}
	return rows, nil
}

// Month is the partition of a raw issue: YYYY-MM of its created time in the offset Jira sent
// (the wall clock the users saw), or "" when created is missing or unreadable.
func Month(issue Issue) string {
	f, _ := issue["fields"].(map[string]any)
	if at, ok := parseLocal(f["created"]); ok {
		return at.Format("2006-01")
	}
	return ""
}

// AttachmentPath is where an attachment is kept under the attachments folder:
// <KEY>/<id>_<sanitized name>.
func AttachmentPath(key, id, filename string) string {
	return filepath.Join(key, SanitizeFilename(id+"_"+filename))
}

var unsafeName = regexp.MustCompile(`[^\p{L}\p{N}._ ()+=,@-]+`)

// SanitizeFilename keeps a name safe as one path element: no separators, no control
// characters, no leading dots, at most 200 bytes.
func SanitizeFilename(name string) string {
	name = unsafeName.ReplaceAllString(name, "_")
	name = strings.TrimLeft(name, ". ")
	for len(name) > 200 {
		ext := filepath.Ext(name)
		if len(ext) > 20 {
			ext = ""
		}
		cut := 200 - len(ext)
		for cut > 0 && !utf8Start(name[cut]) {
			cut--
		}
		name = name[:cut] + ext
	}
	if name == "" {
		name = "_"
	}
	return name
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// hierarchicalPath spreads attachments by issue number: SUPPORT-14991 → 14/991/<id>_<name>.
func hierarchicalPath(key, id, name string) string {
	i := len(key)
	for i > 0 && key[i-1] >= '0' && key[i-1] <= '9' {
		i--
	}
	n := key[i:]
	file := SanitizeFilename(id + "_" + name)
	if n == "" {
		return "other/" + key + "/" + file
	}
	prefix, suffix := "0", n
	if len(n) > 3 {
		prefix, suffix = n[:len(n)-3], n[len(n)-3:]
	}
	return prefix + "/" + suffix + "/" + file
}

var fraction = regexp.MustCompile(`\.\d+`)

var timeLayouts = []string{
	"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05-0700", "2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05-0700", "2006-01-02 15:04:05",
	"2006-01-02T15:04Z07:00", "2006-01-02T15:04-0700", "2006-01-02T15:04", "2006-01-02",
}

// parseLocal reads a Jira date-time in the offset it carries; fractional seconds are dropped
// (not rounded) and a value without an offset is UTC.
func parseLocal(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok || s == "" {
		return time.Time{}, false
	}
	s = fraction.ReplaceAllString(strings.TrimSpace(s), "")
	for _, layout := range timeLayouts {
		if at, err := time.Parse(layout, s); err == nil {
			return at, true
		}
	}
	return time.Time{}, false
}

// ParseTime reads a Jira date-time as UTC; nil when missing or unreadable.
func ParseTime(v any) *time.Time {
	at, ok := parseLocal(v)
	if !ok {
		return nil
	}
	at = at.UTC()
	return &at
}

func timeVal(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

// Field walks nested JSON objects along path; nil when a step is missing or not an object.
func Field(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// List is v as a JSON list; nil when it is not one.
func List(v any) []any { l, _ := v.([]any); return l }

func length(v any) int { return len(List(v)) }

// str is the reference's str(): strings as they are, numbers as written, booleans as Python
// prints them, objects and lists as compact JSON; nil stays nil.
func str(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func strOf(v any) *string {
	if s, ok := str(v).(string); ok {
		return &s
	}
	return nil
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, true
		}
		if f, err := x.Float64(); err == nil {
			return int64(f), true
		}
	case float64:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, true
		}
	}
	return 0, false
}

func intVal(v any) any {
	if n, ok := toInt(v); ok {
		return n
	}
	return nil
}

func commentTotal(f map[string]any) int64 {
	if n, ok := toInt(Field(f, "comment", "total")); ok {
		return n
	}
	return 0
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// optionValue reads a select field: an option's value, or else its name.
func optionValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case map[string]any:
		for _, k := range []string{"value", "name"} {
			if s, ok := x[k].(string); ok && s != "" {
				return s
			}
			if x[k] != nil && x[k] != "" && x[k] != false {
				return str(x[k])
			}
		}
		return nil
	default:
		return str(x)
	}
}

func optionList(v any) []any {
	var out []any
	for _, item := range List(v) {
		if truthy(item) {
			out = append(out, optionValue(item))
		}
	}
	return out
}

func participants(v any) []any {
	var out []any
	for _, u := range List(v) {
		out = append(out, str(Field(u, "emailAddress")))
	}
	return out
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case bool:
		return x
	case map[string]any:
		return len(x) > 0
	case []any:
		return len(x) > 0
	case json.Number:
		return x.String() != "0"
	}
	return true
}

// genericValue renders a configured extra custom field: an option's value, a list of option
// values as JSON, a document as text, anything else as str().
func genericValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return pyJSON(optionList(x))
	case map[string]any:
		if x["type"] == "doc" {
			return nonEmpty(ADFText(x))
		}
		return optionValue(x)
	default:
		return str(x)
	}
}

func labelsJSON(v any) any {
	if v == nil {
		return "null"
	}
	return pyJSON(List(v))
}

// pyJSON writes a list the way Python's json.dumps does by default: ", " between items and
// non-ASCII as \uXXXX escapes (the reference's format, which analysts' queries match on).
func pyJSON(items []any) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		s, ok := str(it).(string)
		if !ok {
			b.WriteString("null")
			continue
		}
		b.WriteByte('"')
		for _, r := range s {
			switch {
			case r == '"':
				b.WriteString(`\"`)
			case r == '\\':
				b.WriteString(`\\`)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\r':
				b.WriteString(`\r`)
			case r == '\t':
				b.WriteString(`\t`)
			case r == '\b':
				b.WriteString(`\b`)
			case r == '\f':
				b.WriteString(`\f`)
			case r < 0x20 || (r > 0x7f && r <= 0xffff):
				fmt.Fprintf(&b, `\u%04x`, r)
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	}
	b.WriteByte(']')
	return b.String()
}

type sla struct{ breached, goal, elapsed any }

// slaMetrics reads a JSM SLA field: the ongoing cycle, or else the last completed one.
func slaMetrics(v any) sla {
	m, ok := v.(map[string]any)
	if !ok || m["errorMessage"] != nil {
		return sla{}
	}
	cycle := m["ongoingCycle"]
	if !truthy(cycle) {
		done := List(m["completedCycles"])
		if len(done) == 0 {
			return sla{}
		}
		cycle = done[len(done)-1]
	}
	var out sla
	if b, ok := Field(cycle, "breached").(bool); ok {
		out.breached = str(b)
	}
	out.goal = intVal(Field(cycle, "goalDuration", "millis"))
	out.elapsed = intVal(Field(cycle, "elapsedTime", "millis"))
	return out
}
