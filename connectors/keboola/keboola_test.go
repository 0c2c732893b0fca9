package keboola_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/connectors/keboola"
	"github.com/ai-data-analyst/analyst/connectors/keboola/keboolatest"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/store"
	"go.yaml.in/yaml/v3"
)

const ordersID = "in.c-crm.orders"

var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func day(n int) time.Time { return base.AddDate(0, 0, n) }

// ordersTable is a table typed by several metadata providers, as real projects are.
func ordersTable() keboolatest.Table {
	sf := "keboola.snowflake-transformation"
	ai := "ai-metadata-enrichment"
	return keboolatest.Table{
		ID:         ordersID,
		Columns:    []string{"id", "customer", "amount", "price", "created_on", "updated_at", "active", "region", "score", "event_at"},
		PrimaryKey: []string{"id"},
		Metadata:   []keboolatest.Meta{{Key: "KBC.description", Value: "Orders, one row per order", Provider: "user"}},
		ColumnMetadata: map[string][]keboolatest.Meta{
			"id": { // the transformation's base type beats an extractor's
				{Key: "KBC.datatype.basetype", Value: "STRING", Provider: "keboola.ex-db-mysql"},
				{Key: "KBC.datatype.type", Value: "NUMBER(38,0)", Provider: sf},
				{Key: "KBC.datatype.basetype", Value: "INTEGER", Provider: sf},
			},
			"customer": {
				{Key: "KBC.datatype.basetype", Value: "STRING", Provider: "keboola.ex-salesforce"},
				{Key: "KBC.description", Value: "AI guess", Provider: ai},
				{Key: "KBC.description", Value: "Customer name", Provider: "user"},
			},
			"amount": { // user beats AI; length keeps the decimal's precision
				{Key: "KBC.datatype.basetype", Value: "FLOAT", Provider: ai},
				{Key: "KBC.datatype.basetype", Value: "NUMERIC", Provider: "user"},
				{Key: "KBC.datatype.length", Value: "12,2", Provider: "user"},
			},
			"price": { // AI's native type (no base type) beats the transformation; precision from the type
				{Key: "KBC.datatype.basetype", Value: "STRING", Provider: sf},
				{Key: "KBC.datatype.type", Value: "number(10,4)", Provider: ai},
			},
			"created_on": { // only an extractor knows: the original fell back to STRING
				{Key: "KBC.datatype.type", Value: "DATE", Provider: "keboola.ex-google-bigquery-v2"},
				{Key: "KBC.datatype.basetype", Value: "DATE", Provider: "keboola.ex-google-bigquery-v2"},
			},
			"updated_at": {
				{Key: "KBC.datatype.type", Value: "TIMESTAMP_NTZ", Provider: sf},
				{Key: "KBC.datatype.basetype", Value: "TIMESTAMP", Provider: sf},
			},
			"active": {
				{Key: "KBC.datatype.basetype", Value: "STRING", Provider: "keboola.ex-db-mysql"},
				{Key: "KBC.datatype.type", Value: "BOOLEAN", Provider: "user"},
			},
			"score":    {{Key: "KBC.datatype.basetype", Value: "FLOAT", Provider: "keboola.ex-db-pgsql"}},
			"event_at": {{Key: "KBC.datatype.type", Value: "TIMESTAMP_TZ", Provider: ai}},
		},
		Rows: []keboolatest.Row{
			{Values: []string{"1", "Acme, Inc.", "10.50", "1.2500", "2024-01-05", "2024-01-05 10:00:00", "true", "EU", "0.5", "2024-01-05T10:00:00+01:00"}, Changed: day(0)},
			{Values: []string{"2", `Bob "B" Ltd`, "20.00", "2.0000", "2024-02-10", "2024-02-10 11:00:00", "false", "US", "1.5", ""}, Changed: day(1)},
			{Values: []string{"3", "Čedok\nPraha", "30.25", "3.1000", "2024-02-15", "2024-02-15 12:00:00", "true", "EU", "", ""}, Changed: day(2)},
			{Values: []string{"4", "Delta", "40.00", "4.0000", "2024-03-01", "2024-03-01 13:00:00", "true", "APAC", "2", ""}, Changed: day(3)},
			{Values: []string{"5", "Echo", "50.75", "5.5000", "2024-03-20", "2024-03-20 14:00:00", "false", "US", "3", ""}, Changed: day(4)},
			{Values: []string{"6", "Foxtrot", "", "", "2024-01-20", "", "", "EU", "", ""}, Changed: day(5)},
			{Values: []string{"7", "Golf", "70.00", "7.0000", "2024-04-02", "2024-04-02 15:00:00", "true", "US", "4", ""}, Changed: day(6)},
		},
	}
}

func allRows() [][]string {
	var out [][]string
	for _, r := range ordersTable().Rows {
		out = append(out, r.Values)
	}
	return out
}

type harness struct {
	fake    *keboolatest.Server
	client  *keboola.Client
	staging string
	logs    *testenv.SyncBuffer
}

// fastOptions keep every wait in milliseconds.
func fastOptions(logs io.Writer) keboola.Options {
	return keboola.Options{
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RequestTimeout: 2 * time.Second,
		StallTimeout:   2 * time.Second,
		MaxRetries:     3,
		RetryBase:      time.Millisecond,
		RetryMax:       20 * time.Millisecond,
		PollMin:        time.Millisecond,
		PollMax:        5 * time.Millisecond,
		JobTimeout:     5 * time.Second,
	}
}

func newHarness(t *testing.T, cfg keboolatest.Config, tweak ...func(*keboola.Options)) *harness {
	t.Helper()
	fake := keboolatest.New(t, cfg)
	fake.SetEnv(t)
	fake.AddTable(ordersTable())
	logs := &testenv.SyncBuffer{}
	opt := fastOptions(logs)
	for _, f := range tweak {
		f(&opt)
	}
	c, err := keboola.New(keboola.Settings{StackURL: fake.URL, StorageToken: fake.Token, ProjectID: "123"}, opt)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{fake: fake, client: c, staging: t.TempDir(), logs: logs}
	t.Cleanup(func() {
		for _, secret := range []string{fake.Token, fake.AWSSecret, fake.AWSSession, fake.GCSToken, fake.AzureSig} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("a secret leaked into the logs:\n%s", logs.String())
			}
		}
	})
	return h
}

func (h *harness) extract(t *testing.T, req connectors.ExtractRequest) (*connectors.Extraction, error) {
	t.Helper()
	if req.Table.ID == "" {
		req.Table = config.Table{ID: ordersID, Name: "orders"}
	}
	req.StagingDir = h.staging
	return h.client.Extract(context.Background(), req)
}

// readRows reads the extraction the way the converter does: files in order, gzip by magic bytes.
func readRows(t *testing.T, ext *connectors.Extraction) [][]string {
	t.Helper()
	var out [][]string
	for _, p := range ext.Files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, recs...)
	}
	return out
}

func assertRows(t *testing.T, got, want [][]string) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("rows:\n got %s\nwant %s", g, w)
	}
}

func stagingEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestSettingsListEveryMissingKey(t *testing.T) {
	_, err := connectors.Open("keboola", jsonSettings(`{}`))
	if err == nil {
		t.Fatal("no error for empty settings")
	}
	for _, key := range []string{"stack_url", "storage_token", "project_id"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
	_, err = connectors.Open("keboola", jsonSettings(`{"stack_url":"https://connection.keboola.com","storage_token":"x","project_id":"1","job_timeout":"soon"}`))
	if err == nil || !strings.Contains(err.Error(), "job_timeout") {
		t.Fatalf("bad job_timeout accepted: %v", err)
	}
	c, err := connectors.Open("keboola", jsonSettings(`{"stack_url":"connection.eu-central-1.keboola.com/","storage_token":"x","project_id":"1"}`))
	if err != nil || c == nil {
		t.Fatalf("valid settings rejected: %v", err)
	}
}

// instance.yaml writes project_id as a number; it decodes into the string setting.
func TestSettingsFromYAML(t *testing.T) {
	var n yaml.Node
	src := "stack_url: https://connection.north-europe.azure.keboola.com\nstorage_token: abc-123\nproject_id: 5505\njob_timeout: 90m\n"
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	var s keboola.Settings
	if err := n.Content[0].Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.ProjectID != "5505" || s.StorageToken != "abc-123" || s.JobTimeout != "90m" {
		t.Fatalf("%+v", s)
	}
	if _, err := keboola.New(s, keboola.Options{}); err != nil {
		t.Fatal(err)
	}
}

type jsonSettings string

func (s jsonSettings) Decode(v any) error {
	d := json.NewDecoder(strings.NewReader(string(s)))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
func (s jsonSettings) Dir() string { return "." }

func TestColumnTypesFollowTheProviderCascade(t *testing.T) {
	h := newHarness(t, keboolatest.Config{})
	alias := keboolatest.Table{ID: "out.c-share.orders", Columns: ordersTable().Columns, IsAlias: true, SourceTable: ordersID}
	h.fake.AddTable(alias)

	want := []store.Column{
		{Name: "id", Type: store.TypeInteger},
		{Name: "customer", Type: store.TypeString, Description: "Customer name"},
		{Name: "amount", Type: "DECIMAL(12,2)"},
		{Name: "price", Type: "DECIMAL(10,4)"},
		{Name: "created_on", Type: store.TypeDate},
		{Name: "updated_at", Type: store.TypeTimestamp},
		{Name: "active", Type: store.TypeBoolean},
		{Name: "region", Type: store.TypeString},
		{Name: "score", Type: store.TypeNumeric},
		{Name: "event_at", Type: store.TypeTimestampTZ},
	}
	for _, id := range []string{ordersID, alias.ID} {
		ext, err := h.extract(t, connectors.ExtractRequest{Table: config.Table{ID: id}})
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(ext.Columns)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s columns:\n got %s\nwant %s", id, g, w)
		}
		if ext.Format.Header || !ext.Temporary || ext.Format.Delimiter != ',' || ext.Format.Quote != '"' {
			t.Errorf("%s format %+v temporary %v", id, ext.Format, ext.Temporary)
		}
		assertRows(t, readRows(t, ext), allRows())
	}
	// the export asked for the columns in the order Columns names them
	form := h.fake.Exports()[0]
	if form.Get("columns[0]") != "id" || form.Get("columns[9]") != "event_at" || form.Get("gzip") != "1" {
		t.Errorf("export form %v", form)
	}
}

func TestSlicedAndWholeExportsOnEachCloud(t *testing.T) {
	for _, provider := range []string{"aws", "gcp", "azure"} {
		for _, sliced := range []bool{true, false} {
			t.Run(provider+"/sliced="+strconv.FormatBool(sliced), func(t *testing.T) {
				h := newHarness(t, keboolatest.Config{Provider: provider, Sliced: sliced, SliceRows: 2, PollsBeforeDone: 2})
				var progressed int64
				ext, err := h.extract(t, connectors.ExtractRequest{Progress: func(n int64) { progressed += n }})
				if err != nil {
					t.Fatal(err)
				}
				wantFiles := 1
				if sliced {
					wantFiles = 4 // 7 rows, 2 per slice, in manifest order
				}
				if len(ext.Files) != wantFiles {
					t.Fatalf("%d files, want %d: %v", len(ext.Files), wantFiles, ext.Files)
				}
				var size int64
				for _, p := range ext.Files {
					if filepath.Dir(p) != h.staging {
						t.Errorf("file %s outside the staging dir", p)
					}
					fi, err := os.Stat(p)
					if err != nil {
						t.Fatal(err)
					}
					size += fi.Size()
				}
				if progressed != size || size == 0 {
					t.Errorf("progress reported %d bytes, files hold %d", progressed, size)
				}
				assertRows(t, readRows(t, ext), allRows())
				server := map[string]string{"aws": "s3", "gcp": "gcs", "azure": "azure"}[provider]
				gets := h.fake.Count(server, "GET", "/")
				if sliced && gets != 5 || !sliced && gets != 1 {
					t.Errorf("%d object GETs on %s", gets, server)
				}
				if polls := h.fake.Count("api", "GET", "/v2/storage/jobs/"); polls != 3 {
					t.Errorf("job polled %d times, want 3 (waiting, processing, success)", polls)
				}
			})
		}
	}
}

func TestEmptyExportIsOneEmptyFile(t *testing.T) {
	h := newHarness(t, keboolatest.Config{Sliced: true})
	ext, err := h.extract(t, connectors.ExtractRequest{ChangedSince: day(100)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ext.Files) != 1 {
		t.Fatalf("files %v", ext.Files)
	}
	if rows := readRows(t, ext); len(rows) != 0 {
		t.Fatalf("rows %v", rows)
	}
}

func TestChangedWindowCombinesWithWhereFilters(t *testing.T) {
	h := newHarness(t, keboolatest.Config{Sliced: true, Provider: "gcp"})
	tbl := config.Table{ID: ordersID, WhereFilters: []config.WhereFilter{
		{Column: "region", Operator: "eq", Values: []string{"EU", "US"}},
		{Column: "created_on", Operator: "ge", Values: []string{"2024-02-01"}},
	}}
	ext, err := h.extract(t, connectors.ExtractRequest{Table: tbl, ChangedSince: day(1), ChangedUntil: day(6)})
	if err != nil {
		t.Fatal(err)
	}
	form := h.fake.Exports()[0]
	for k, v := range map[string]string{
		"changedSince": strconv.FormatInt(day(1).Unix(), 10), "changedUntil": strconv.FormatInt(day(6).Unix(), 10),
		"whereFilters[0][column]": "region", "whereFilters[0][operator]": "eq",
		"whereFilters[0][values][0]": "EU", "whereFilters[0][values][1]": "US",
		"whereFilters[1][column]": "created_on", "whereFilters[1][operator]": "ge", "whereFilters[1][values][0]": "2024-02-01",
	} {
		if form.Get(k) != v {
			t.Errorf("form %s = %q, want %q", k, form.Get(k), v)
		}
	}
	// rows 2..6 changed in the window; of those EU/US; of those created from February: 2, 3, 5.
	rows := allRows()
	assertRows(t, readRows(t, ext), [][]string{rows[1], rows[2], rows[4]})
}

func TestServerErrorsAreRetried(t *testing.T) {
	h := newHarness(t, keboolatest.Config{Sliced: true})
	h.fake.Inject(keboolatest.Fault{Server: "api", Path: "/v2/storage/tables/" + ordersID, Method: "GET", Times: 3, Status: 500})
	h.fake.Inject(keboolatest.Fault{Server: "api", Path: "/v2/storage/jobs/", Times: 1, Status: 503})
	h.fake.Inject(keboolatest.Fault{Server: "s3", Path: "/kbc-sapi-files/", Skip: 1, Times: 2, Status: 503})
	ext, err := h.extract(t, connectors.ExtractRequest{})
	if err != nil {
		t.Fatal(err)
	}
	assertRows(t, readRows(t, ext), allRows())
	if n := h.fake.Count("api", "GET", "/v2/storage/tables/"+ordersID); n != 4 {
		t.Errorf("table detail requested %d times, want 4 (3 failures + success)", n)
	}
	if n := h.fake.Count("s3", "GET", "/"); n != 5+2 {
		t.Errorf("%d S3 GETs, want 7 (manifest, 4 slices, 2 retried)", n)
	}
}

func TestRetriesGiveUpWithTheStatus(t *testing.T) {
	h := newHarness(t, keboolatest.Config{})
	h.fake.Inject(keboolatest.Fault{Server: "api", Path: "/v2/storage/tables/", Status: 502})
	_, err := h.extract(t, connectors.ExtractRequest{})
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("err = %v", err)
	}
	if n := h.fake.Count("api", "", "/v2/storage/tables/"); n != 4 {
		t.Errorf("%d attempts, want 1 + 3 retries", n)
	}
}

func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	h := newHarness(t, keboolatest.Config{}, func(o *keboola.Options) { o.RetryMax = 5 * time.Second })
	h.fake.Inject(keboolatest.Fault{Server: "api", Method: "POST", Path: "/v2/storage/tables/", Times: 1, Status: 429, RetryAfter: "1"})
	start := time.Now()
	ext, err := h.extract(t, connectors.ExtractRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("retried after %s, Retry-After asked for 1s", took)
	}
	if n := h.fake.Count("api", "POST", "/v2/storage/tables/"); n != 2 {
		t.Errorf("%d export requests, want 2", n)
	}
	assertRows(t, readRows(t, ext), allRows())
}

func TestSlowAndDroppedRepliesAreRetried(t *testing.T) {
	h := newHarness(t, keboolatest.Config{Sliced: true, Provider: "azure"}, func(o *keboola.Options) {
		o.RequestTimeout = 100 * time.Millisecond
		o.StallTimeout = 100 * time.Millisecond
	})
	h.fake.Inject(keboolatest.Fault{Server: "api", Path: "/v2/storage/files/", Times: 1, Delay: time.Second})
	h.fake.Inject(keboolatest.Fault{Server: "api", Path: "/v2/storage/tables/" + ordersID, Method: "GET", Times: 1, Truncate: true})
	h.fake.Inject(keboolatest.Fault{Server: "azure", Path: "/devstoreaccount1/", Skip: 2, Times: 1, Truncate: true})
	ext, err := h.extract(t, connectors.ExtractRequest{})
	if err != nil {
		t.Fatal(err)
	}
	assertRows(t, readRows(t, ext), allRows())
	if n := h.fake.Count("api", "GET", "/v2/storage/files/"); n != 2 {
		t.Errorf("file detail requested %d times, want 2 (one timed out)", n)
	}
	if n := h.fake.Count("api", "GET", "/v2/storage/tables/"+ordersID); n != 2 {
		t.Errorf("table detail requested %d times, want 2 (one dropped)", n)
	}
	if n := h.fake.Count("azure", "GET", "/"); n != 6 {
		t.Errorf("%d blob GETs, want 6 (manifest, 4 slices, 1 dropped)", n)
	}
}

func TestJobErrorIsSurfaced(t *testing.T) {
	h := newHarness(t, keboolatest.Config{PollsBeforeDone: 1, JobError: "Snowflake: warehouse is suspended"})
	_, err := h.extract(t, connectors.ExtractRequest{})
	var je *keboola.JobError
	if !errors.As(err, &je) || !strings.Contains(err.Error(), "warehouse is suspended") || !strings.Contains(err.Error(), ordersID) {
		t.Fatalf("err = %v", err)
	}
	if left := stagingEntries(t, h.staging); len(left) != 0 {
		t.Errorf("staging not empty: %v", left)
	}
}

func TestJobTimeout(t *testing.T) {
	h := newHarness(t, keboolatest.Config{PollsBeforeDone: 1 << 30}, func(o *keboola.Options) { o.JobTimeout = 50 * time.Millisecond })
	start := time.Now()
	_, err := h.extract(t, connectors.ExtractRequest{})
	if err == nil || !strings.Contains(err.Error(), "still processing after 50ms") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("gave up after %s", took)
	}
	if n := h.fake.Count("api", "GET", "/v2/storage/jobs/"); n < 3 {
		t.Errorf("job polled only %d times", n)
	}
}

func TestClientErrorsFailAtOnceWithKeboolasMessage(t *testing.T) {
	h := newHarness(t, keboolatest.Config{})
	_, err := h.extract(t, connectors.ExtractRequest{Table: config.Table{ID: "in.c-crm.nope"}})
	var apiErr *keboola.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Code != "storage.tables.notFound" {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), `The table "nope" was not found in the bucket "in.c-crm"`) || !strings.Contains(err.Error(), "404") {
		t.Errorf("message %q", err)
	}
	if n := h.fake.Count("api", "", "/v2/storage/tables/in.c-crm.nope"); n != 1 {
		t.Errorf("%d requests for a 404, want 1", n)
	}
}

func TestInvalidTokenAndTokenNeverInErrors(t *testing.T) {
	h := newHarness(t, keboolatest.Config{})
	bad, err := keboola.New(keboola.Settings{StackURL: h.fake.URL, StorageToken: "wrong-token-0123456789", ProjectID: "123"}, fastOptions(h.logs))
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Invalid access token") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v", err)
	}
	if n := h.fake.Count("api", "", "/v2/storage/buckets"); n != 1 {
		t.Errorf("401 retried: %d requests", n)
	}
	// a reply that echoes the token (a misbehaving proxy) is redacted
	h.fake.Inject(keboolatest.Fault{Server: "api", Path: "/v2/storage/tables/", Times: 1, Status: 400,
		Message: "Bad header X-StorageApi-Token: " + h.fake.Token})
	_, err = h.extract(t, connectors.ExtractRequest{})
	if err == nil || strings.Contains(err.Error(), h.fake.Token) || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("err = %v", err)
	}
	// connection failures name the host, never the token
	h.fake.Close()
	_, err = h.extract(t, connectors.ExtractRequest{})
	if err == nil || strings.Contains(err.Error(), h.fake.Token) {
		t.Fatalf("err = %v", err)
	}
}

func TestFailedDownloadLeavesNothingBehind(t *testing.T) {
	t.Run("forbidden slice", func(t *testing.T) {
		h := newHarness(t, keboolatest.Config{Sliced: true})
		h.fake.Inject(keboolatest.Fault{Server: "s3", Path: "/kbc-sapi-files/exp-15/123/table-exports/in/c-crm/orders/", Skip: 3, Status: 403})
		_, err := h.extract(t, connectors.ExtractRequest{})
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("err = %v", err)
		}
		if left := stagingEntries(t, h.staging); len(left) != 0 {
			t.Errorf("staging not empty: %v", left)
		}
	})
	t.Run("connection always dropped", func(t *testing.T) {
		h := newHarness(t, keboolatest.Config{Sliced: true, Provider: "gcp"})
		h.fake.Inject(keboolatest.Fault{Server: "gcs", Path: "/kbc-gcs-files/", Skip: 3, Truncate: true})
		_, err := h.extract(t, connectors.ExtractRequest{})
		if err == nil || !strings.Contains(err.Error(), "slice") {
			t.Fatalf("err = %v", err)
		}
		if left := stagingEntries(t, h.staging); len(left) != 0 {
			t.Errorf("staging not empty: %v", left)
		}
	})
	t.Run("store echoes its credentials", func(t *testing.T) {
		h := newHarness(t, keboolatest.Config{Sliced: true, Provider: "azure"})
		h.fake.Inject(keboolatest.Fault{Server: "azure", Path: "/devstoreaccount1/", Skip: 1, Status: 500,
			Message: "upstream failed for sig=" + h.fake.AzureSig})
		_, err := h.extract(t, connectors.ExtractRequest{})
		if err == nil || strings.Contains(err.Error(), h.fake.AzureSig) || !strings.Contains(err.Error(), "[redacted]") {
			t.Fatalf("err = %v", err)
		}
		if left := stagingEntries(t, h.staging); len(left) != 0 {
			t.Errorf("staging not empty: %v", left)
		}
		// the harness also checks the retry warnings in the log for the signature
	})
	t.Run("bad signature", func(t *testing.T) {
		h := newHarness(t, keboolatest.Config{Sliced: true})
		h.fake.ExpectAWSSecret("another-secret")
		_, err := h.extract(t, connectors.ExtractRequest{})
		if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
			t.Fatalf("err = %v", err)
		}
		if left := stagingEntries(t, h.staging); len(left) != 0 {
			t.Errorf("staging not empty: %v", left)
		}
	})
}

func TestCanceledExtractStops(t *testing.T) {
	h := newHarness(t, keboolatest.Config{PollsBeforeDone: 1 << 30})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := h.client.Extract(ctx, connectors.ExtractRequest{Table: config.Table{ID: ordersID}, StagingDir: h.staging})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestListBucketsAndTables(t *testing.T) {
	h := newHarness(t, keboolatest.Config{})
	h.fake.AddTable(keboolatest.Table{ID: "in.c-crm.people", Columns: []string{"id", "name"},
		Rows: []keboolatest.Row{{Values: []string{"1", "Ann"}}}})
	h.fake.AddTable(keboolatest.Table{ID: "out.c-reports.daily", Columns: []string{"day"}})
	if err := h.client.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	buckets, err := h.client.ListBuckets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != 2 || buckets[0].ID != "in.c-crm" || buckets[0].Stage != "in" || buckets[0].RowsCount != 8 || buckets[1].ID != "out.c-reports" {
		t.Fatalf("buckets %+v", buckets)
	}
	tables, err := h.client.ListTables(context.Background(), "in.c-crm")
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 || tables[0].ID != ordersID || tables[1].ID != "in.c-crm.people" {
		t.Fatalf("tables %+v", tables)
	}
	o := tables[0]
	if o.Name != "orders" || o.BucketID != "in.c-crm" || o.RowsCount != 7 || o.DataSizeBytes == 0 ||
		strings.Join(o.PrimaryKey, ",") != "id" || o.Description != "Orders, one row per order" ||
		len(o.Columns) != 10 || o.Columns[2].Type != "DECIMAL(12,2)" {
		t.Errorf("orders %+v", o)
	}
	if p := tables[1]; p.Columns[1] != (store.Column{Name: "name", Type: store.TypeString}) {
		t.Errorf("people %+v", p)
	}
}

func TestRedirectToAnotherHostDropsTheToken(t *testing.T) {
	var got []string
	var mu sync.Mutex
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("X-StorageApi-Token"))
		mu.Unlock()
		w.Write([]byte(`[]`))
	}))
	defer other.Close()
	stack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-StorageApi-Token") != "secret-token-value" {
			t.Errorf("stack got token %q", r.Header.Get("X-StorageApi-Token"))
		}
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer stack.Close()
	c, err := keboola.New(keboola.Settings{StackURL: stack.URL, StorageToken: "secret-token-value", ProjectID: "1"}, keboola.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "" {
		t.Fatalf("other host saw tokens %q", got)
	}
}
