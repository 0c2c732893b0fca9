// Package bqtest owns a fake BigQuery REST API for tests: datasets.get, tables.list, tables.get,
// tabledata.list, jobs.insert (dry runs report bytes processed) and jobs.getQueryResults, with
// paging by pageToken and injectable 5xx replies. Point the connector at URL (the "endpoint"
// setting, or option.WithEndpoint) with no credentials.
package bqtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Table is a fake table; values are as the REST API sends them (TIMESTAMP as microseconds).
type Table struct {
	Dataset, Name string
	Description   string
	Fields        []string // "name:TYPE", TYPE one of STRING, INTEGER, FLOAT, NUMERIC, BOOLEAN, DATE, DATETIME, TIMESTAMP
	Rows          [][]any  // nil is NULL
	PartitionBy   string
}

// Server is the fake API.
type Server struct {
	URL     string // the endpoint, ending in /bigquery/v2/
	Project string

	// PageSize is the rows per page of tabledata.list and getQueryResults (default 2).
	PageSize int
	// QueryRows answers every non-dry query (the fake does not run SQL).
	QueryRows [][]any
	// DryRunBytes is what a dry run reports as processed.
	DryRunBytes int64

	mu       sync.Mutex
	tables   map[string]*Table
	fail     map[string]int // path substring -> 503 replies left
	jobs     map[string]*job
	requests []string
	queries  []map[string]any
}

type job struct {
	table *Table
	rows  [][]any
}

// New starts a fake for project; it stops when the test ends.
func New(t testing.TB, project string) *Server {
	s := &Server{Project: project, PageSize: 2, tables: map[string]*Table{}, fail: map[string]int{}, jobs: map[string]*job{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/bigquery/v2/"
	return s
}

// AddTable stores a table.
func (s *Server) AddTable(t Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables[t.Dataset+"."+t.Name] = &t
}

// FailNext makes the next n requests whose path contains substr answer 503.
func (s *Server) FailNext(substr string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[substr] = n
}

// Requests lists "METHOD path?query" of every request.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Queries lists the configuration.query blocks of inserted jobs (dry runs included).
func (s *Server) Queries() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.queries...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	for sub, n := range s.fail {
		if n > 0 && strings.Contains(r.URL.Path, sub) {
			s.fail[sub] = n - 1
			writeError(w, http.StatusServiceUnavailable, "backendError", "try again")
			return
		}
	}
	prefix := "/bigquery/v2/projects/" + s.Project + "/"
	p, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "Not found: project in "+r.URL.Path)
		return
	}
	parts := strings.Split(p, "/")
	switch {
	case r.Method == http.MethodPost && p == "jobs":
		s.insertJob(w, r)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "queries":
		s.queryResults(w, r, parts[1])
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "datasets":
		if !s.hasDataset(parts[1]) {
			writeError(w, http.StatusNotFound, "notFound", "Not found: Dataset "+s.Project+":"+parts[1])
			return
		}
		writeJSON(w, map[string]any{"datasetReference": map[string]string{"projectId": s.Project, "datasetId": parts[1]}})
	case r.Method == http.MethodGet && len(parts) == 3 && parts[2] == "tables":
		var list []map[string]any
		for _, t := range s.tables {
			if t.Dataset == parts[1] {
				list = append(list, map[string]any{"tableReference": s.ref(t)})
			}
		}
		writeJSON(w, map[string]any{"tables": list, "totalItems": len(list)})
	case r.Method == http.MethodGet && len(parts) >= 4 && parts[2] == "tables":
		t, ok := s.tables[parts[1]+"."+parts[3]]
		if !ok {
			writeError(w, http.StatusNotFound, "notFound", "Not found: Table "+parts[1]+"."+parts[3])
			return
		}
		if len(parts) == 5 && parts[4] == "data" {
			rows, token := s.page(t.Rows, r.URL.Query().Get("pageToken"))
			writeJSON(w, map[string]any{"totalRows": strconv.Itoa(len(t.Rows)), "rows": rows, "pageToken": token})
			return
		}
		out := map[string]any{"tableReference": s.ref(t), "schema": schema(t), "description": t.Description,
			"numRows": strconv.Itoa(len(t.Rows)), "numBytes": strconv.Itoa(100 * len(t.Rows))}
		if t.PartitionBy != "" {
			out["timePartitioning"] = map[string]string{"type": "DAY", "field": t.PartitionBy}
		}
		writeJSON(w, out)
	default:
		writeError(w, http.StatusNotFound, "notFound", "no such endpoint "+r.Method+" "+r.URL.Path)
	}
}

func (s *Server) hasDataset(name string) bool {
	for _, t := range s.tables {
		if t.Dataset == name {
			return true
		}
	}
	return false
}

func (s *Server) ref(t *Table) map[string]string {
	return map[string]string{"projectId": s.Project, "datasetId": t.Dataset, "tableId": t.Name}
}

func schema(t *Table) map[string]any {
	var fields []map[string]string
	for _, f := range t.Fields {
		name, typ, _ := strings.Cut(f, ":")
		fields = append(fields, map[string]string{"name": name, "type": typ, "mode": "NULLABLE"})
	}
	return map[string]any{"fields": fields}
}

// page returns the rows after token (an offset) and the next token.
func (s *Server) page(all [][]any, token string) ([]map[string]any, string) {
	start, _ := strconv.Atoi(token)
	end := min(start+s.PageSize, len(all))
	var rows []map[string]any
	for _, r := range all[start:end] {
		var cells []map[string]any
		for _, v := range r {
			if v == nil {
				cells = append(cells, map[string]any{"v": nil})
			} else {
				cells = append(cells, map[string]any{"v": fmt.Sprint(v)})
			}
		}
		rows = append(rows, map[string]any{"f": cells})
	}
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return rows, next
}

func (s *Server) insertJob(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JobReference  map[string]string `json:"jobReference"`
		Configuration struct {
			DryRun bool           `json:"dryRun"`
			Query  map[string]any `json:"query"`
		} `json:"configuration"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	s.queries = append(s.queries, req.Configuration.Query)
	sql, _ := req.Configuration.Query["query"].(string)
	var table *Table
	for id, t := range s.tables {
		if strings.Contains(sql, "`"+s.Project+"."+id+"`") {
			table = t
		}
	}
	if table == nil {
		writeError(w, http.StatusNotFound, "notFound", "Not found: the table in "+sql)
		return
	}
	id := req.JobReference["jobId"]
	if id == "" {
		id = fmt.Sprintf("job_%d", len(s.jobs)+1)
	}
	bytes := strconv.FormatInt(s.DryRunBytes, 10)
	out := map[string]any{
		"jobReference":  map[string]string{"projectId": s.Project, "jobId": id, "location": "US"},
		"configuration": map[string]any{"dryRun": req.Configuration.DryRun, "query": req.Configuration.Query, "jobType": "QUERY"},
		"status":        map[string]string{"state": "DONE"},
		"statistics":    map[string]any{"totalBytesProcessed": bytes, "query": map[string]any{"totalBytesProcessed": bytes}},
	}
	if !req.Configuration.DryRun {
		s.jobs[id] = &job{table: table, rows: s.QueryRows}
	}
	writeJSON(w, out)
}

func (s *Server) queryResults(w http.ResponseWriter, r *http.Request, id string) {
	j, ok := s.jobs[id]
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Job "+id)
		return
	}
	out := map[string]any{"jobReference": map[string]string{"projectId": s.Project, "jobId": id}, "jobComplete": true,
		"schema": schema(j.table), "totalRows": strconv.Itoa(len(j.rows))}
	if r.URL.Query().Get("maxResults") != "0" {
		rows, token := s.page(j.rows, r.URL.Query().Get("pageToken"))
		out["rows"], out["pageToken"] = rows, token
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg,
		"errors": []map[string]string{{"reason": reason, "message": msg}}}})
}
