// Package jiratest is a fake Jira Cloud for tests: the REST v3 calls the server makes (issue
// with expand and fields, paged comments and changelog, remote links, JQL search with
// nextPageToken, attachment content, SLA fields through the cloud gateway), Basic auth, the
// personal token's error objects for SLA fields, truncated embedded lists, moved keys, 429
// with Retry-After and slow replies; plus signed webhook bodies.
package jiratest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Credentials the fake accepts.
const (
	Email    = "bot@example.com"
	Token    = "personal-token"
	SLAEmail = "sla@example.com"
	SLAToken = "sla-token"
	CloudID  = "cloud-1234"
)

// Server is a fake Jira Cloud site; its URL serves as both base_url and sla_base_url.
type Server struct {
	*httptest.Server

	// CommentEmbed and ChangelogEmbed are how many comments and histories the issue reply
	// embeds before Jira truncates (the rest comes from the paged endpoints).
	CommentEmbed, ChangelogEmbed int
	// MaxPage caps maxResults of the paged endpoints.
	MaxPage int
	// Latency delays every API reply.
	Latency time.Duration

	mu        sync.Mutex
	issues    map[string]map[string]any // by key
	moved     map[string]string         // old key -> new key
	remote    map[string][]any
	sla       map[string]map[string]any // SLA field values, readable by the service account only
	files     map[string][]byte         // attachment id -> content
	throttle  int                       // next API requests answered 429
	retryHdr  string
	failLinks int // next remote-link requests answered 500
	calls     map[string]*atomic.Int64
	queries   []string
	searchFn  func(jql string, keys []string) []string
}

// New starts a fake Jira; it closes with the test.
func New() *Server {
	s := &Server{
		CommentEmbed: 5, ChangelogEmbed: 10, MaxPage: 100,
		issues: map[string]map[string]any{}, moved: map[string]string{}, remote: map[string][]any{},
		sla: map[string]map[string]any{}, files: map[string][]byte{}, calls: map[string]*atomic.Int64{},
	}
	for _, k := range []string{"issue", "comment", "changelog", "remotelink", "sla", "search", "attachment"} {
		s.calls[k] = new(atomic.Int64)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Calls is how many requests a route got: issue, comment, changelog, remotelink, sla, search,
// attachment.
func (s *Server) Calls(route string) int64 { return s.calls[route].Load() }

// Queries are the raw query strings of the SLA requests, in order.
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// Put adds or replaces an issue (a map as Jira returns it with fields=*all and changelog).
// SLA custom fields in it are moved to the service account's view.
func (s *Server) Put(issue map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	issue = asJSON(issue)
	key := issue["key"].(string)
	if f, ok := issue["fields"].(map[string]any); ok {
		for _, id := range []string{"customfield_10328", "customfield_10161"} {
			if v, ok := f[id]; ok {
				if s.sla[key] == nil {
					s.sla[key] = map[string]any{}
				}
				s.sla[key][id] = v
				delete(f, id)
			}
		}
	}
	s.issues[key] = issue
}

// Update changes a stored issue in place.
func (s *Server) Update(key string, fn func(issue map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.issues[key])
}

// Issue returns a copy of a stored issue.
func (s *Server) Issue(key string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.issues[key])
}

// SetSLA sets SLA field values (customfield_10328, customfield_10161) of an issue.
func (s *Server) SetSLA(key string, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fields = asJSON(fields)
	if s.sla[key] == nil {
		s.sla[key] = map[string]any{}
	}
	for k, v := range fields {
		s.sla[key][k] = v
	}
}

// Delete removes an issue.
func (s *Server) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.issues, key)
}

// Move gives an issue a new key (another project); the old key keeps resolving to it.
func (s *Server) Move(oldKey, newKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issues[oldKey]
	delete(s.issues, oldKey)
	is["key"] = newKey
	is["self"] = s.URL + "/rest/api/3/issue/" + is["id"].(string)
	if f, ok := is["fields"].(map[string]any); ok {
		proj := strings.SplitN(newKey, "-", 2)[0]
		f["project"] = map[string]any{"key": proj, "name": "Project " + proj}
	}
	s.issues[newKey] = is
	s.moved[oldKey] = newKey
	if v, ok := s.sla[oldKey]; ok {
		s.sla[newKey] = v
	}
	if v, ok := s.remote[oldKey]; ok {
		s.remote[newKey] = v
	}
}

// SetRemoteLinks sets an issue's remote links.
func (s *Server) SetRemoteLinks(key string, links []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remote[key] = links
}

// AddFile makes attachment content downloadable at FileURL(id).
func (s *Server) AddFile(id string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[id] = content
}

// FileURL is an attachment's content URL.
func (s *Server) FileURL(id string) string { return s.URL + "/rest/api/3/attachment/content/" + id }

// Throttle answers the next n API requests with 429 and the given Retry-After ("" for none).
func (s *Server) Throttle(n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle, s.retryHdr = n, retryAfter
}

// FailRemoteLinks answers the next n remote-link requests with 500.
func (s *Server) FailRemoteLinks(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLinks = n
}

// SearchFunc replaces the JQL evaluation: it gets the query and all live keys (sorted) and
// returns the matching keys. By default "key in (A, B)" is understood and anything else
// matches every issue.
func (s *Server) SearchFunc(fn func(jql string, keys []string) []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.searchFn = fn
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.Latency > 0 {
		time.Sleep(s.Latency)
	}
	path := r.URL.Path
	s.mu.Lock()
	if s.throttle > 0 {
		s.throttle--
		hdr := s.retryHdr
		s.mu.Unlock()
		if hdr != "" {
			w.Header().Set("Retry-After", hdr)
		}
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"errorMessages": []string{"Rate limit exceeded"}})
		return
	}
	s.mu.Unlock()

	if gw := "/ex/jira/" + CloudID + "/rest/api/3/issue/"; strings.HasPrefix(path, gw) {
		if !auth(r, SLAEmail, SLAToken) {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Client must be authenticated"})
			return
		}
		s.calls["sla"].Add(1)
		s.mu.Lock()
		s.queries = append(s.queries, r.URL.RawQuery)
		s.mu.Unlock()
		s.slaIssue(w, r, strings.TrimPrefix(path, gw))
		return
	}
	if !auth(r, Email, Token) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errorMessages": []string{"You are not authenticated"}})
		return
	}
	switch {
	case strings.HasPrefix(path, "/rest/api/3/attachment/content/"):
		s.calls["attachment"].Add(1)
		s.mu.Lock()
		b, ok := s.files[strings.TrimPrefix(path, "/rest/api/3/attachment/content/")]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	case path == "/rest/api/3/search/jql" && r.Method == http.MethodPost:
		s.calls["search"].Add(1)
		s.search(w, r)
	case strings.HasPrefix(path, "/rest/api/3/issue/") && r.Method == http.MethodGet:
		parts := strings.Split(strings.TrimPrefix(path, "/rest/api/3/issue/"), "/")
		switch {
		case len(parts) == 1:
			s.calls["issue"].Add(1)
			s.issue(w, r, parts[0])
		case len(parts) == 2 && parts[1] == "comment":
			s.calls["comment"].Add(1)
			s.paged(w, r, parts[0], "comments")
		case len(parts) == 2 && parts[1] == "changelog":
			s.calls["changelog"].Add(1)
			s.paged(w, r, parts[0], "values")
		case len(parts) == 2 && parts[1] == "remotelink":
			s.calls["remotelink"].Add(1)
			s.remoteLinks(w, parts[0])
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

func auth(r *http.Request, user, pass string) bool {
	u, p, ok := r.BasicAuth()
	return ok && u == user && p == pass
}

// find resolves a key (also a moved one) or an id; the caller holds mu.
func (s *Server) find(ref string) map[string]any {
	if is, ok := s.issues[ref]; ok {
		return is
	}
	if to, ok := s.moved[ref]; ok {
		return s.find(to)
	}
	for _, is := range s.issues {
		if is["id"] == ref {
			return is
		}
	}
	return nil
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"errorMessages": []string{"Issue does not exist or you do not have permission to see it."}, "errors": map[string]any{}})
}

func (s *Server) issue(w http.ResponseWriter, r *http.Request, ref string) {
	s.mu.Lock()
	is := clone(s.find(ref))
	s.mu.Unlock()
	if is == nil {
		notFound(w)
		return
	}
	q := r.URL.Query()
	f, _ := is["fields"].(map[string]any)
	if q.Get("fields") == "*all" {
		// A personal token without a JSM agent licence sees SLA fields as errors.
		for _, id := range []string{"customfield_10328", "customfield_10161"} {
			f[id] = map[string]any{"errorMessage": "You do not have permission to view this field"}
		}
	}
	if cm, ok := f["comment"].(map[string]any); ok {
		all, _ := cm["comments"].([]any)
		cm["total"], cm["maxResults"], cm["startAt"] = len(all), s.CommentEmbed, 0
		cm["comments"] = all[:min(len(all), s.CommentEmbed)]
	}
	histories, _ := is["changelog"].([]any)
	delete(is, "changelog")
	if strings.Contains(q.Get("expand"), "changelog") {
		is["changelog"] = map[string]any{"startAt": 0, "maxResults": s.ChangelogEmbed, "total": len(histories),
			"histories": histories[:min(len(histories), s.ChangelogEmbed)]}
	}
	if strings.Contains(q.Get("expand"), "renderedFields") {
		is["renderedFields"] = map[string]any{"description": "<p>rendered</p>"}
	}
	is["expand"] = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
	writeJSON(w, http.StatusOK, is)
}

func (s *Server) paged(w http.ResponseWriter, r *http.Request, ref, field string) {
	s.mu.Lock()
	is := clone(s.find(ref))
	s.mu.Unlock()
	if is == nil {
		notFound(w)
		return
	}
	var all []any
	if field == "comments" {
		all, _ = is["fields"].(map[string]any)["comment"].(map[string]any)["comments"].([]any)
	} else {
		all, _ = is["changelog"].([]any)
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("startAt"))
	size, err := strconv.Atoi(r.URL.Query().Get("maxResults"))
	if err != nil || size <= 0 || size > s.MaxPage {
		size = s.MaxPage
	}
	start = min(max(start, 0), len(all))
	end := min(start+size, len(all))
	page := map[string]any{"startAt": start, "maxResults": size, "total": len(all), field: all[start:end]}
	if field == "values" {
		page["isLast"] = end >= len(all)
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) remoteLinks(w http.ResponseWriter, ref string) {
	s.mu.Lock()
	if s.failLinks > 0 {
		s.failLinks--
		s.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, map[string]any{"errorMessages": []string{"Internal server error"}})
		return
	}
	is := s.find(ref)
	var links []any
	if is != nil {
		links = s.remote[is["key"].(string)]
	}
	links = cloneList(links)
	s.mu.Unlock()
	if is == nil {
		notFound(w)
		return
	}
	if links == nil {
		links = []any{}
	}
	writeJSON(w, http.StatusOK, links)
}

func (s *Server) slaIssue(w http.ResponseWriter, r *http.Request, ref string) {
	s.mu.Lock()
	is := clone(s.find(ref))
	var sla map[string]any
	if is != nil {
		sla = clone(s.sla[is["key"].(string)])
	}
	s.mu.Unlock()
	if is == nil {
		notFound(w)
		return
	}
	f, _ := is["fields"].(map[string]any)
	for k, v := range sla {
		f[k] = v
	}
	out := map[string]any{}
	if want := r.URL.Query().Get("fields"); want != "" {
		for _, name := range strings.Split(want, ",") {
			if v, ok := f[name]; ok {
				out[name] = v
			}
		}
	} else {
		out = f
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": is["id"], "key": is["key"], "fields": out})
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JQL           string   `json:"jql"`
		MaxResults    int      `json:"maxResults"`
		Fields        []string `json:"fields"`
		NextPageToken string   `json:"nextPageToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"Invalid request payload"}})
		return
	}
	s.mu.Lock()
	keys := make([]string, 0, len(s.issues))
	for k := range s.issues {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	fn := s.searchFn
	ids := map[string]any{}
	for _, k := range keys {
		ids[k] = s.issues[k]["id"]
	}
	s.mu.Unlock()
	if fn != nil {
		keys = fn(req.JQL, keys)
	} else if in, ok := strings.CutPrefix(strings.TrimSpace(req.JQL), "key in ("); ok {
		want := map[string]bool{}
		for _, k := range strings.Split(strings.TrimSuffix(in, ")"), ",") {
			want[strings.Trim(strings.TrimSpace(k), `"`)] = true
		}
		var match []string
		for _, k := range keys {
			if want[k] {
				match = append(match, k)
			}
		}
		keys = match
	}
	size := req.MaxResults
	if size <= 0 || size > s.MaxPage {
		size = s.MaxPage
	}
	start := 0
	if req.NextPageToken != "" {
		b, err := base64.StdEncoding.DecodeString(req.NextPageToken)
		if err == nil {
			start, err = strconv.Atoi(string(b))
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"Invalid nextPageToken"}})
			return
		}
	}
	start = min(start, len(keys))
	end := min(start+size, len(keys))
	issues := []any{}
	for _, k := range keys[start:end] {
		issues = append(issues, map[string]any{"id": ids[k], "key": k, "fields": map[string]any{}})
	}
	page := map[string]any{"issues": issues, "isLast": end >= len(keys)}
	if end < len(keys) {
		page["nextPageToken"] = base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	writeJSON(w, http.StatusOK, page)
}

// keyLess orders PROJ-9 before PROJ-10.
func keyLess(a, b string) bool {
	pa, na, _ := strings.Cut(a, "-")
	pb, nb, _ := strings.Cut(b, "-")
	if pa != pb {
		return pa < pb
	}
	ia, _ := strconv.Atoi(na)
	ib, _ := strconv.Atoi(nb)
	return ia < ib
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// asJSON is m as decoding its JSON gives it (numbers float64, lists []any): what the fake
// stores, so its handlers see the types a client would.
func asJSON(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// clone deep-copies a decoded JSON object, so what the fake hands out never aliases its state.
func clone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneList(l []any) []any {
	if l == nil {
		return nil
	}
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return clone(v)
	case []any:
		return cloneList(v)
	default: // strings, numbers, booleans, nil: immutable
		return v
	}
}

// Sign is the X-Hub-Signature-256 value of body: "sha256=" + hex HMAC-SHA256.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Webhook is a webhook body as Jira sends it for event about issue (its id, key and a few
// fields); extra keys (comment, changelog...) are merged in.
func Webhook(event string, issue map[string]any, extra map[string]any) []byte {
	body := map[string]any{
		"timestamp": time.Now().UnixMilli(), "webhookEvent": event, "matchedWebhookIds": []int{1},
		"user": map[string]any{"accountId": "5b10a2844c20165700ede21g", "displayName": "Webhook User", "active": true},
	}
	if issue != nil {
		f, _ := issue["fields"].(map[string]any)
		small := map[string]any{}
		for _, k := range []string{"summary", "issuetype", "project", "status", "priority", "created", "updated"} {
			if v, ok := f[k]; ok {
				small[k] = v
			}
		}
		body["issue"] = map[string]any{"id": issue["id"], "key": issue["key"], "self": issue["self"], "fields": small}
		switch {
		case strings.HasPrefix(event, "jira:issue"):
			body["issue_event_type_name"] = strings.TrimPrefix(event, "jira:")
		case strings.HasPrefix(event, "comment"):
			body["issue_event_type_name"] = "issue_commented"
		}
	}
	for k, v := range extra {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("jiratest: webhook: %v", err))
	}
	return b
}
