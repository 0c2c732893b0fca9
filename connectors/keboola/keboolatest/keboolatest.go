// Package keboolatest owns a fake Keboola stack for tests: the Storage API endpoints the connector
// uses (buckets, tables, export-async, jobs, files with federation tokens) over an in-memory table
// with a change time per row, plus fake S3 (verifying SigV4 independently of the client's signer),
// GCS (bearer token) and Azure Blob (SAS) stores holding sliced, gzipped exports, and fault
// injection (5xx, 429 with Retry-After, slow replies, dropped connections, bad tokens).
//
// Typical use:
//
//	fake := keboolatest.New(t, keboolatest.Config{Provider: "gcp", Sliced: true, PollsBeforeDone: 2})
//	fake.SetEnv(t) // AWS_ENDPOINT_URL_S3 and STORAGE_EMULATOR_HOST point at the fake stores
//	fake.AddTable(keboolatest.Table{ID: "in.c-crm.orders", Columns: []string{"id"}, Rows: rows})
//	fake.Inject(keboolatest.Fault{Server: "api", Path: "/v2/storage/jobs/", Times: 2, Status: 503})
//	settings := keboola.Settings{StackURL: fake.URL, StorageToken: fake.Token, ProjectID: "123"}
package keboolatest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Meta is one column (or table) metadata entry.
type Meta struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Provider string `json:"provider"`
}

// Row is one table row, values in column order, with the time Keboola last changed it
// (what changedSince and changedUntil filter on).
type Row struct {
	Values  []string
	Changed time.Time
}

// Table is an in-memory Storage table.
type Table struct {
	ID             string // stage.c-bucket.name
	Columns        []string
	PrimaryKey     []string
	ColumnMetadata map[string][]Meta // empty: sent as [] like the real API
	Metadata       []Meta            // table metadata (KBC.description)
	Rows           []Row
	// An alias with empty ColumnMetadata exposes its source's metadata under sourceTable,
	// and exports the source's rows when it has none of its own.
	IsAlias     bool
	SourceTable string
}

// Config is how the fake behaves; change it with Set.
type Config struct {
	Provider        string // file provider: "aws" (default), "gcp" or "azure"
	Sliced          bool   // exports are sliced files with a manifest
	SliceRows       int    // rows per slice (default 2)
	PollsBeforeDone int    // job polls answered "waiting"/"processing" before the job ends
	JobError        string // when set, export jobs end in status error with this message
}

// Request is one request the fake received.
type Request struct {
	Server string // "api", "s3", "gcs" or "azure"
	Method string
	Path   string
}

// Fault makes matching requests fail or misbehave.
type Fault struct {
	Server     string        // "api", "s3", "gcs", "azure"; "" = any
	Method     string        // "" = any
	Path       string        // URL path prefix; "" = any
	Skip       int           // let this many matching requests through first
	Times      int           // then hit this many (0 = all following)
	Status     int           // reply with this status and a service-shaped error body
	RetryAfter string        // Retry-After header for the fault reply
	Delay      time.Duration // wait this long first (a slow reply); the client may give up
	Truncate   bool          // send the real reply's headers and half its body, then drop the connection
	Message    string        // error text of the fault reply (default: the status text)
	seen       int
}

// Server is the fake stack. Its URL is the stack_url; S3URL and GCSURL are the endpoints the
// connector reads from AWS_ENDPOINT_URL_S3 and STORAGE_EMULATOR_HOST (see SetEnv).
type Server struct {
	URL, S3URL, GCSURL, AzureURL string
	Token                        string

	// Cloud credentials handed out with federationToken=1 and checked by the fake stores.
	AWSKeyID, AWSSecret, AWSSession string
	GCSToken                        string
	AzureSig                        string

	api, s3, gcs, azure *httptest.Server

	mu       sync.Mutex
	cfg      Config
	tables   map[string]*Table
	jobs     map[int]*job
	files    map[int]*fileRec
	blobs    map[string][]byte // "<server>:<bucket>/<key>"
	presign  map[string]string // "<server>:<bucket>/<key>" -> signature accepted in the query
	faults   []*Fault
	requests []Request
	exports  []url.Values
	nextID   int
	// awsSecretCheck is the secret the fake S3 verifies against (normally AWSSecret).
	awsSecretCheck string
}

type job struct {
	id, fileID int
	tableID    string
	polls      int
	err        string
	params     url.Values
}

type fileRec struct {
	id       int
	name     string
	provider string
	sliced   bool
	bucket   string // S3/GCS bucket or Azure container
	key      string // object key (non-sliced) or key prefix (sliced; manifest at key+"manifest")
	size     int
}

// New starts the fake servers; they stop when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := &Server{
		Token:      "kbc-test-token-3b1f9c0e7d2a",
		AWSKeyID:   "ASIAFAKEKEYID0001",
		AWSSecret:  "fake/aws+secret/KEY0123456789abcdef",
		AWSSession: "FwoGZXIvYXdzEFAKE//session+token==",
		GCSToken:   "ya29.fake-gcs-access-token",
		AzureSig:   "fAkE+sig/0123456789abcdef=",
		tables:     map[string]*Table{},
		jobs:       map[int]*job{},
		files:      map[int]*fileRec{},
		blobs:      map[string][]byte{},
		presign:    map[string]string{},
		nextID:     1000,
	}
	s.awsSecretCheck = s.AWSSecret
	s.setConfig(cfg)
	s.api = httptest.NewServer(s.wrap("api", http.HandlerFunc(s.serveAPI)))
	s.s3 = httptest.NewServer(s.wrap("s3", http.HandlerFunc(s.serveS3)))
	s.gcs = httptest.NewServer(s.wrap("gcs", http.HandlerFunc(s.serveGCS)))
	s.azure = httptest.NewServer(s.wrap("azure", http.HandlerFunc(s.serveAzure)))
	s.URL, s.S3URL, s.GCSURL, s.AzureURL = s.api.URL, s.s3.URL, s.gcs.URL, s.azure.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops the servers.
func (s *Server) Close() {
	for _, h := range []*httptest.Server{s.api, s.s3, s.gcs, s.azure} {
		h.CloseClientConnections()
		h.Close()
	}
}

// SetEnv points the connector's cloud endpoints at the fake stores for the rest of the test.
func (s *Server) SetEnv(t testing.TB) {
	t.Setenv("AWS_ENDPOINT_URL_S3", s.S3URL)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(s.GCSURL, "http://"))
}

// Set changes the behaviour.
func (s *Server) Set(f func(*Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	f(&cfg)
	s.setConfig(cfg)
}

func (s *Server) setConfig(cfg Config) {
	if cfg.Provider == "" {
		cfg.Provider = "aws"
	}
	if cfg.SliceRows <= 0 {
		cfg.SliceRows = 2
	}
	s.cfg = cfg
}

// ExpectAWSSecret makes the fake S3 verify signatures against another secret, so that a
// correctly signed request is rejected (proves the verification is real).
func (s *Server) ExpectAWSSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awsSecretCheck = secret
}

// AddTable stores a table (replacing one with the same id).
func (s *Server) AddTable(t Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := t
	s.tables[t.ID] = &c
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Count is how many requests matched server ("" = any), method ("" = any) and path prefix.
func (s *Server) Count(server, method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if (server == "" || r.Server == server) && (method == "" || r.Method == method) && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// Requests lists every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Exports lists the form of every export-async request.
func (s *Server) Exports() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exports)
}

// wrap records the request and applies faults before the real handler.
func (s *Server) wrap(server string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Server: server, Method: r.Method, Path: r.URL.Path})
		var hit *Fault
		for _, f := range s.faults {
			if (f.Server == "" || f.Server == server) && (f.Method == "" || f.Method == r.Method) && strings.HasPrefix(r.URL.Path, f.Path) {
				f.seen++
				if f.seen > f.Skip && (f.Times == 0 || f.seen <= f.Skip+f.Times) {
					hit = f
					break
				}
			}
		}
		var fault Fault
		if hit != nil {
			fault = *hit
		}
		s.mu.Unlock()
		if hit == nil {
			h.ServeHTTP(w, r)
			return
		}
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case fault.Status != 0:
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			msg := fault.Message
			if msg == "" {
				msg = http.StatusText(fault.Status)
				if server == "api" && fault.Status >= 500 {
					msg = "Internal Server Error occurred. Please contact support."
				}
			}
			if server == "api" {
				apiError(w, fault.Status, msg, "faultInjected")
			} else {
				xmlError(w, fault.Status, "InternalError", msg)
			}
		case fault.Truncate:
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body[:len(body)/2])
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			panic(http.ErrAbortHandler) // drops the connection mid-body
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// apiError writes Keboola's error shape.
func apiError(w http.ResponseWriter, status int, msg, code string) {
	writeJSON(w, status, map[string]any{"error": msg, "code": code, "status": "error",
		"exceptionId": "exception-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 16)})
}

// xmlError writes the S3 / GCS XML / Azure error shape.
func xmlError(w http.ResponseWriter, status int, code, msg string) {
	b := fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

var (
	reTable  = regexp.MustCompile(`^/v2/storage/tables/([^/]+)$`)
	reExport = regexp.MustCompile(`^/v2/storage/tables/([^/]+)/export-async$`)
	reJob    = regexp.MustCompile(`^/v2/storage/jobs/(\d+)$`)
	reFile   = regexp.MustCompile(`^/v2/storage/files/(\d+)$`)
	reTables = regexp.MustCompile(`^/v2/storage/buckets/([^/]+)/tables$`)
)

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-StorageApi-Token") != s.Token {
		apiError(w, http.StatusUnauthorized, "Invalid access token", "storage.tokenInvalid")
		return
	}
	p := r.URL.Path
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && p == "/v2/storage/buckets":
		writeJSON(w, http.StatusOK, s.bucketsJSON())
	case r.Method == http.MethodGet && reTables.MatchString(p):
		bucket := reTables.FindStringSubmatch(p)[1]
		include := r.URL.Query().Get("include")
		list := []map[string]any{}
		for _, id := range s.tableIDs() {
			if bucketOf(id) == bucket {
				list = append(list, s.tableJSON(s.tables[id], strings.Contains(include, "columnMetadata")))
			}
		}
		writeJSON(w, http.StatusOK, list)
	case r.Method == http.MethodGet && reTable.MatchString(p):
		t := s.tables[reTable.FindStringSubmatch(p)[1]]
		if t == nil {
			apiError(w, http.StatusNotFound, fmt.Sprintf("The table %q was not found in the bucket %q in the project %q",
				tableName(reTable.FindStringSubmatch(p)[1]), bucketOf(reTable.FindStringSubmatch(p)[1]), "123"), "storage.tables.notFound")
			return
		}
		writeJSON(w, http.StatusOK, s.tableJSON(t, true))
	case r.Method == http.MethodPost && reExport.MatchString(p):
		s.export(w, r, reExport.FindStringSubmatch(p)[1])
	case r.Method == http.MethodGet && reJob.MatchString(p):
		id, _ := strconv.Atoi(reJob.FindStringSubmatch(p)[1])
		j := s.jobs[id]
		if j == nil {
			apiError(w, http.StatusNotFound, fmt.Sprintf("Job %d not found", id), "storage.jobs.notFound")
			return
		}
		j.polls++
		writeJSON(w, http.StatusOK, s.jobJSON(j))
	case r.Method == http.MethodGet && reFile.MatchString(p):
		id, _ := strconv.Atoi(reFile.FindStringSubmatch(p)[1])
		f := s.files[id]
		if f == nil {
			apiError(w, http.StatusNotFound, fmt.Sprintf("File %d not found", id), "storage.files.notFound")
			return
		}
		fed := r.URL.Query().Get("federationToken")
		writeJSON(w, http.StatusOK, s.fileJSON(f, fed == "1" || fed == "true"))
	default:
		apiError(w, http.StatusNotFound, "Route not found", "routeNotFound")
	}
}

func (s *Server) tableIDs() []string {
	ids := make([]string, 0, len(s.tables))
	for id := range s.tables {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func bucketOf(id string) string {
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		return id[:i]
	}
	return id
}

func tableName(id string) string { return id[strings.LastIndexByte(id, '.')+1:] }

func (s *Server) bucketsJSON() []map[string]any {
	type agg struct{ rows, bytes int }
	byBucket := map[string]*agg{}
	var order []string
	for _, id := range s.tableIDs() {
		b := bucketOf(id)
		if byBucket[b] == nil {
			byBucket[b] = &agg{}
			order = append(order, b)
		}
		byBucket[b].rows += len(s.tables[id].Rows)
		byBucket[b].bytes += tableBytes(s.tables[id])
	}
	out := []map[string]any{}
	for _, b := range order {
		stage, name, _ := strings.Cut(b, ".")
		out = append(out, map[string]any{
			"uri": s.URL + "/v2/storage/buckets/" + b, "id": b, "name": name, "stage": stage,
			"description": "", "backend": "snowflake", "rowsCount": byBucket[b].rows, "dataSizeBytes": byBucket[b].bytes,
		})
	}
	return out
}

func tableBytes(t *Table) int {
	n := 0
	for _, r := range t.Rows {
		for _, v := range r.Values {
			n += len(v) + 1
		}
	}
	return n
}

func metaJSON(m map[string][]Meta) any {
	if len(m) == 0 {
		return []any{} // PHP serialises an empty map as an empty array
	}
	return m
}

func (s *Server) tableJSON(t *Table, withMeta bool) map[string]any {
	stage, bname, _ := strings.Cut(bucketOf(t.ID), ".")
	j := map[string]any{
		"uri": s.URL + "/v2/storage/tables/" + t.ID, "id": t.ID, "name": tableName(t.ID), "displayName": tableName(t.ID),
		"transactional": false, "primaryKey": nonNil(t.PrimaryKey), "columns": t.Columns,
		"created": "2024-01-02T03:04:05+0100", "lastImportDate": "2025-03-01T10:00:00+0100", "lastChangeDate": "2025-03-01T10:00:05+0100",
		"rowsCount": len(s.exportRows(t)), "dataSizeBytes": tableBytes(t), "isAlias": t.IsAlias,
		"metadata": nonNilMeta(t.Metadata),
		"bucket":   map[string]any{"id": bucketOf(t.ID), "name": bname, "stage": stage, "backend": "snowflake"},
	}
	if withMeta {
		j["columnMetadata"] = metaJSON(t.ColumnMetadata)
	}
	if t.IsAlias && t.SourceTable != "" {
		src := map[string]any{"id": t.SourceTable, "uri": s.URL + "/v2/storage/tables/" + t.SourceTable,
			"name": tableName(t.SourceTable), "project": map[string]any{"id": 123, "name": "Fake"}}
		if st := s.tables[t.SourceTable]; st != nil && withMeta {
			src["columnMetadata"] = metaJSON(st.ColumnMetadata)
		}
		j["sourceTable"] = src
	}
	return j
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMeta(m []Meta) []Meta {
	if m == nil {
		return []Meta{}
	}
	return m
}

func (s *Server) exportRows(t *Table) []Row {
	if len(t.Rows) == 0 && t.IsAlias {
		if src := s.tables[t.SourceTable]; src != nil {
			return src.Rows
		}
	}
	return t.Rows
}

var reWhere = regexp.MustCompile(`^whereFilters\[(\d+)\]\[(column|operator|values)\](?:\[(\d*)\])?$`)
var reColumn = regexp.MustCompile(`^columns\[(\d*)\]$`)

type where struct {
	column, operator string
	values           []string
}

// export validates the request like the Storage API, filters the rows at once (a snapshot),
// stores the file in the configured cloud and creates a job that finishes after some polls.
func (s *Server) export(w http.ResponseWriter, r *http.Request, id string) {
	t := s.tables[id]
	if t == nil {
		apiError(w, http.StatusNotFound, fmt.Sprintf("The table %q was not found in the bucket %q in the project %q", tableName(id), bucketOf(id), "123"), "storage.tables.notFound")
		return
	}
	if err := r.ParseForm(); err != nil {
		apiError(w, http.StatusBadRequest, "Invalid form body", "storage.validation")
		return
	}
	form := r.PostForm
	s.exports = append(s.exports, form)

	colIndex := map[string]int{}
	for i, c := range t.Columns {
		colIndex[c] = i
	}
	// columns: "a,b", columns[]=a, or columns[0]=a
	var cols []string
	type idxVal struct {
		i int
		v string
	}
	var indexed []idxVal
	for k, vs := range form {
		if k == "columns" {
			for _, v := range vs {
				cols = append(cols, strings.Split(v, ",")...)
			}
		} else if m := reColumn.FindStringSubmatch(k); m != nil {
			i, _ := strconv.Atoi(m[1])
			for _, v := range vs {
				indexed = append(indexed, idxVal{i, v})
			}
		}
	}
	sort.SliceStable(indexed, func(a, b int) bool { return indexed[a].i < indexed[b].i })
	for _, iv := range indexed {
		cols = append(cols, iv.v)
	}
	if len(cols) == 0 {
		cols = t.Columns
	}
	var missing []string
	for _, c := range cols {
		if _, ok := colIndex[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("Columns %s not found in table %s", strings.Join(missing, ", "), id), "storage.tables.columnsNotFound")
		return
	}

	wheres := map[int]*where{}
	for k, vs := range form {
		m := reWhere.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		i, _ := strconv.Atoi(m[1])
		if wheres[i] == nil {
			wheres[i] = &where{}
		}
		switch m[2] {
		case "column":
			wheres[i].column = vs[0]
		case "operator":
			wheres[i].operator = vs[0]
		case "values":
			j, _ := strconv.Atoi(m[3])
			for len(wheres[i].values) <= j {
				wheres[i].values = append(wheres[i].values, "")
			}
			wheres[i].values[j] = vs[0]
		}
	}
	var filters []*where
	for i := 0; i < len(wheres); i++ {
		wf := wheres[i]
		if wf == nil {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("whereFilters[%d] is missing", i), "storage.validation")
			return
		}
		if _, ok := colIndex[wf.column]; !ok {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("Invalid where filter: column %q not found", wf.column), "storage.validation")
			return
		}
		switch wf.operator {
		case "", "eq", "ne", "gt", "ge", "lt", "le":
		default:
			apiError(w, http.StatusBadRequest, fmt.Sprintf("Invalid where operator %q", wf.operator), "storage.validation")
			return
		}
		filters = append(filters, wf)
	}
	since, err1 := unixParam(form.Get("changedSince"))
	until, err2 := unixParam(form.Get("changedUntil"))
	if err1 != nil || err2 != nil {
		apiError(w, http.StatusBadRequest, "changedSince and changedUntil must be unix timestamps", "storage.validation")
		return
	}

	var out [][]string
	for _, row := range s.exportRows(t) {
		if !since.IsZero() && row.Changed.Before(since) {
			continue
		}
		if !until.IsZero() && !row.Changed.Before(until) {
			continue
		}
		if !matches(row, filters, colIndex) {
			continue
		}
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = row.Values[colIndex[c]]
		}
		out = append(out, vals)
	}
	gz := form.Get("gzip") == "1" || form.Get("gzip") == "true"

	s.nextID++
	fileID := s.nextID
	s.nextID++
	jobID := s.nextID
	s.storeFile(fileID, id, out, gz)
	j := &job{id: jobID, fileID: fileID, tableID: id, err: s.cfg.JobError, params: form}
	s.jobs[jobID] = j
	writeJSON(w, http.StatusAccepted, s.jobJSON(j))
}

func unixParam(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0), nil
}

func matches(row Row, filters []*where, colIndex map[string]int) bool {
	for _, f := range filters {
		v := row.Values[colIndex[f.column]]
		ok := false
		switch f.operator {
		case "", "eq":
			ok = slices.Contains(f.values, v)
		case "ne":
			ok = !slices.Contains(f.values, v)
		default:
			for _, want := range f.values {
				c := strings.Compare(v, want)
				if (f.operator == "gt" && c > 0) || (f.operator == "ge" && c >= 0) ||
					(f.operator == "lt" && c < 0) || (f.operator == "le" && c <= 0) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// csvRows writes rows the way Snowflake unloads them for Keboola: every field quoted, no header.
func csvRows(rows [][]string) []byte {
	var b bytes.Buffer
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(v, `"`, `""`))
			b.WriteByte('"')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func (s *Server) storeFile(fileID int, tableID string, rows [][]string, gz bool) {
	p := s.cfg.Provider
	f := &fileRec{id: fileID, provider: p, sliced: s.cfg.Sliced, name: strings.ReplaceAll(tableID, ".", "_") + ".csv"}
	if gz {
		f.name += ".gz"
	}
	server := map[string]string{"aws": "s3", "gcp": "gcs", "azure": "azure"}[p]
	switch p {
	case "aws":
		f.bucket = "kbc-sapi-files"
	case "gcp":
		f.bucket = "kbc-gcs-files"
	case "azure":
		f.bucket = fmt.Sprintf("exp-15-files-%d", fileID)
	}
	prefix := fmt.Sprintf("exp-15/123/table-exports/%s/%d.%s", strings.ReplaceAll(tableID, ".", "/"), fileID, f.name)
	if p == "azure" {
		prefix = fmt.Sprintf("%d.%s", fileID, f.name)
	}
	f.key = prefix
	encode := func(rows [][]string) []byte {
		b := csvRows(rows)
		if gz {
			b = gzipBytes(b)
		}
		return b
	}
	if !f.sliced {
		body := encode(rows)
		s.blobs[server+":"+f.bucket+"/"+f.key] = body
		f.size = len(body)
		s.presign[server+":"+f.bucket+"/"+f.key] = fmt.Sprintf("presigned-%d", fileID)
		s.files[fileID] = f
		return
	}
	type entry struct {
		URL       string         `json:"url"`
		Mandatory bool           `json:"mandatory"`
		Meta      map[string]int `json:"meta"`
	}
	entries := []entry{}
	for i := 0; i*s.cfg.SliceRows < len(rows); i++ {
		part := rows[i*s.cfg.SliceRows : min((i+1)*s.cfg.SliceRows, len(rows))]
		key := fmt.Sprintf("%s%04d_part_00", prefix, i)
		if gz {
			key += ".gz"
		}
		body := encode(part)
		s.blobs[server+":"+f.bucket+"/"+key] = body
		f.size += len(body)
		var u string
		switch p {
		case "aws":
			u = "s3://" + f.bucket + "/" + key
		case "gcp":
			u = "gs://" + f.bucket + "/" + key
		case "azure":
			u = "azure://devstoreaccount1.blob.core.windows.net/" + f.bucket + "/" + key
		}
		entries = append(entries, entry{URL: u, Mandatory: true, Meta: map[string]int{"content_length": len(body)}})
	}
	manifest, _ := json.Marshal(map[string]any{"entries": entries})
	s.blobs[server+":"+f.bucket+"/"+prefix+"manifest"] = manifest
	s.presign[server+":"+f.bucket+"/"+prefix+"manifest"] = fmt.Sprintf("presigned-%d", fileID)
	s.files[fileID] = f
}

func (s *Server) jobJSON(j *job) map[string]any {
	status := "success"
	switch {
	case j.polls == 0:
		status = "waiting"
	case j.polls <= s.cfg.PollsBeforeDone:
		status = "processing"
		if j.polls == 1 {
			status = "waiting"
		}
	case j.err != "":
		status = "error"
	}
	out := map[string]any{
		"id": j.id, "status": status, "url": s.URL + "/v2/storage/jobs/" + strconv.Itoa(j.id),
		"tableId": j.tableID, "operationName": "tableExport", "createdTime": "2025-03-01T10:00:00+0100",
		"results": nil, "error": nil,
	}
	switch status {
	case "success":
		out["results"] = map[string]any{"file": map[string]any{"id": j.fileID}}
	case "error":
		out["error"] = map[string]any{"code": "APPLICATION_ERROR", "message": j.err, "exceptionId": "job-exception-1"}
	}
	return out
}

func (s *Server) fileJSON(f *fileRec, fed bool) map[string]any {
	out := map[string]any{
		"id": f.id, "name": f.name, "provider": f.provider, "isSliced": f.sliced, "sizeBytes": f.size,
		"created": "2025-03-01T10:00:10+0100", "isEncrypted": true, "isPublic": false,
	}
	key := f.key
	if f.sliced {
		key += "manifest"
	}
	switch f.provider {
	case "aws":
		out["region"] = "eu-central-1"
		out["url"] = fmt.Sprintf("%s/%s/%s?X-Amz-Signature=%s", s.S3URL, f.bucket, key, s.presign["s3:"+f.bucket+"/"+key])
		if fed {
			out["credentials"] = map[string]any{"AccessKeyId": s.AWSKeyID, "SecretAccessKey": s.AWSSecret,
				"SessionToken": s.AWSSession, "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
			out["s3Path"] = map[string]any{"bucket": f.bucket, "key": f.key}
		}
	case "gcp":
		out["region"] = "europe-west3"
		out["url"] = fmt.Sprintf("%s/%s/%s?X-Goog-Signature=%s", s.GCSURL, f.bucket, key, s.presign["gcs:"+f.bucket+"/"+key])
		if fed {
			out["gcsCredentials"] = map[string]any{"access_token": s.GCSToken, "expires_in": 3599, "token_type": "Bearer", "projectId": "kbc-fake"}
			out["gcsPath"] = map[string]any{"bucket": f.bucket, "key": f.key}
		}
	case "azure":
		out["region"] = "westeurope"
		out["url"] = fmt.Sprintf("%s/devstoreaccount1/%s/%s?%s", s.AzureURL, f.bucket, key, s.sas())
		if fed {
			out["absCredentials"] = map[string]any{
				"SASConnectionString": fmt.Sprintf("BlobEndpoint=%s/devstoreaccount1;SharedAccessSignature=%s", s.AzureURL, s.sas()),
				"expiration":          time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			}
			out["absPath"] = map[string]any{"container": f.bucket, "name": f.key}
		}
	}
	return out
}

func (s *Server) sas() string {
	return url.Values{"sv": {"2021-08-06"}, "sr": {"c"}, "sp": {"rl"},
		"se": {time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")}, "sig": {s.AzureSig}}.Encode()
}

func (s *Server) blob(w http.ResponseWriter, key string) bool {
	b, ok := s.blobs[key]
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	return true
}

// serveS3 is a path-style S3 endpoint: GET /<bucket>/<key>, authorised by SigV4 with the session
// token, or by the pre-signature the file detail's url carries.
func (s *Server) serveS3(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "s3:" + strings.TrimPrefix(r.URL.Path, "/")
	if sig := r.URL.Query().Get("X-Amz-Signature"); sig != "" {
		if sig != s.presign[key] {
			xmlError(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
			return
		}
	} else if code, msg := verifySigV4(r, s.AWSKeyID, s.awsSecretCheck, s.AWSSession, time.Now()); code != "" {
		xmlError(w, http.StatusForbidden, code, msg)
		return
	}
	if r.Method != http.MethodGet {
		xmlError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	if !s.blob(w, key) {
		xmlError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	}
}

// serveGCS is the XML-API object download: GET /<bucket>/<object> with a bearer token.
func (s *Server) serveGCS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "gcs:" + strings.TrimPrefix(r.URL.Path, "/")
	if sig := r.URL.Query().Get("X-Goog-Signature"); sig != "" {
		if sig != s.presign[key] {
			xmlError(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
			return
		}
	} else if auth := r.Header.Get("Authorization"); auth == "" {
		xmlError(w, http.StatusUnauthorized, "AuthenticationRequired", "Authentication required.")
		return
	} else if auth != "Bearer "+s.GCSToken {
		xmlError(w, http.StatusUnauthorized, "AuthenticationRequired", "Invalid Credentials")
		return
	}
	if !s.blob(w, key) {
		xmlError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	}
}

// serveAzure is a path-style blob endpoint: GET /devstoreaccount1/<container>/<blob>?<SAS>.
func (s *Server) serveAzure(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	se, err := time.Parse("2006-01-02T15:04:05Z", q.Get("se"))
	if q.Get("sig") != s.AzureSig || q.Get("sv") == "" || !strings.Contains(q.Get("sp"), "r") || err != nil || time.Now().After(se) {
		xmlError(w, http.StatusForbidden, "AuthenticationFailed",
			"Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/devstoreaccount1/")
	if !ok || !s.blob(w, "azure:"+rest) {
		xmlError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
	}
}
