package bigquery_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/connectors/bigquery"
	"github.com/ai-data-analyst/analyst/connectors/bigquery/bqtest"
	"github.com/ai-data-analyst/analyst/store"
)

func fake(t *testing.T) *bqtest.Server {
	bq := bqtest.New(t, "acme")
	bq.AddTable(bqtest.Table{Dataset: "shop", Name: "orders", Description: "Orders", PartitionBy: "ordered_on",
		Fields: []string{"id:INTEGER", "customer:STRING", "total:NUMERIC", "ordered_on:DATE", "paid_at:TIMESTAMP", "gift:BOOLEAN", "weight:FLOAT"},
		Rows: [][]any{
			{1, "Ann", "10.50", "2024-01-02", micros("2024-01-02T10:00:00Z"), true, 1.5},
			{2, "Bob, Jr.", "20.00", "2024-01-03", micros("2024-01-03T11:30:00Z"), false, nil},
			{3, `say "hi"`, "30.25", "2024-02-01", nil, nil, 2.25},
			{4, nil, "0.01", "2024-02-02", micros("2024-02-02T00:00:00Z"), true, 0.5},
			{5, "Eve", "99.99", "2024-03-01", micros("2024-03-01T23:59:59Z"), false, 3},
		}})
	return bq
}

func micros(s string) string {
	tm, _ := time.Parse(time.RFC3339, s)
	return strconv.FormatInt(tm.UnixMicro(), 10)
}

func open(t *testing.T, bq *bqtest.Server, maxBytes string) *bigquery.Source {
	t.Helper()
	src, err := bigquery.New(context.Background(), bigquery.Settings{Project: "acme", Dataset: "shop", Endpoint: bq.URL, MaxBytes: maxBytes}, bigquery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// convert runs the pipeline's converter on the extraction and reads the Parquet with DuckDB.
func convert(t *testing.T, ext *connectors.Extraction) *sql.DB {
	t.Helper()
	out := filepath.Join(t.TempDir(), "t.parquet")
	if _, err := store.ConvertCSV(context.Background(), ext.Files, store.ConvertOptions{Format: ext.Format, Columns: ext.Columns}, out); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE VIEW t AS SELECT * FROM read_parquet('" + out + "')"); err != nil {
		t.Fatal(err)
	}
	return db
}

// A whole table comes over tabledata.list, page by page, surviving a 503, with its types.
func TestExtractWholeTable(t *testing.T) {
	bq := fake(t)
	bq.FailNext("/tables/orders/data", 1)
	src := open(t, bq, "")
	if err := src.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	ext, err := src.Extract(context.Background(), connectors.ExtractRequest{
		Table: config.Table{ID: "shop.orders", Name: "orders"}, StagingDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	for _, r := range bq.Requests() {
		if strings.Contains(r, "/tables/orders/data") {
			pages++
		}
		if strings.HasPrefix(r, "POST") {
			t.Fatalf("a whole-table read must not run a query (it costs bytes): %s", r)
		}
	}
	if pages != 4 { // one 503, then three pages of two rows
		t.Fatalf("%d tabledata.list calls, want 4: %v", pages, bq.Requests())
	}
	db := convert(t, ext)
	types := map[string]string{}
	rows, _ := db.Query("SELECT column_name, column_type FROM (DESCRIBE t)")
	for rows.Next() {
		var n, ty string
		rows.Scan(&n, &ty)
		types[n] = ty
	}
	rows.Close()
	want := map[string]string{"id": "BIGINT", "customer": "VARCHAR", "total": "DECIMAL(38,9)", "ordered_on": "DATE",
		"paid_at": "TIMESTAMP WITH TIME ZONE", "gift": "BOOLEAN", "weight": "DOUBLE"}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("%s is %s, want %s", k, types[k], v)
		}
	}
	var n int
	var total float64
	var customer string
	var paid time.Time
	db.QueryRow("SELECT count(*), sum(total)::DOUBLE FROM t").Scan(&n, &total)
	db.QueryRow("SELECT customer, paid_at FROM t WHERE id = 2").Scan(&customer, &paid)
	if n != 5 || total < 160.74 || total > 160.76 || customer != "Bob, Jr." || !paid.Equal(time.Date(2024, 1, 3, 11, 30, 0, 0, time.UTC)) {
		t.Fatalf("rows %d total %v customer %q paid %v", n, total, customer, paid)
	}
	var nulls int
	db.QueryRow("SELECT count(*) FROM t WHERE customer IS NULL OR paid_at IS NULL OR weight IS NULL").Scan(&nulls)
	if nulls != 3 {
		t.Fatalf("NULLs: %d, want 3", nulls)
	}
}

// An incremental window is a parameterized query on partition_by, dry-run first.
func TestExtractWindowQuery(t *testing.T) {
	bq := fake(t)
	bq.DryRunBytes = 4096
	bq.QueryRows = [][]any{{5, "Eve", "99.99", "2024-03-01", micros("2024-03-01T23:59:59Z"), false, 3}}
	src := open(t, bq, "1MB")
	since := time.Date(2024, 2, 20, 0, 0, 0, 0, time.UTC)
	ext, err := src.Extract(context.Background(), connectors.ExtractRequest{
		Table: config.Table{ID: "shop.orders", Name: "orders", PartitionBy: "ordered_on"}, ChangedSince: since, StagingDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	qs := bq.Queries()
	if len(qs) != 2 {
		t.Fatalf("want a dry run and the query, got %d jobs", len(qs))
	}
	q := qs[1]["query"].(string)
	if !strings.Contains(q, "`ordered_on` >= @since") || !strings.Contains(q, "`acme.shop.orders`") {
		t.Fatalf("query: %s", q)
	}
	if qs[1]["maximumBytesBilled"] != "1048576" {
		t.Fatalf("max_bytes must also bound billing: %v", qs[1])
	}
	var n int
	convert(t, ext).QueryRow("SELECT count(*) FROM t").Scan(&n)
	if n != 1 {
		t.Fatalf("%d rows", n)
	}
}

// A query the dry run says is too big never runs.
func TestMaxBytesGuard(t *testing.T) {
	bq := fake(t)
	bq.DryRunBytes = 10 << 30
	src := open(t, bq, "1GB")
	_, err := src.Extract(context.Background(), connectors.ExtractRequest{
		Table: config.Table{ID: "shop.orders", Name: "orders", PartitionBy: "ordered_on"}, ChangedSince: time.Now().Add(-time.Hour), StagingDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "max_bytes") || !strings.Contains(err.Error(), "10.0 GB") {
		t.Fatalf("want the max_bytes guard, got %v", err)
	}
	if len(bq.Queries()) != 1 {
		t.Fatalf("only the dry run may be sent, got %d jobs", len(bq.Queries()))
	}
}

func TestCheckAndTables(t *testing.T) {
	bq := fake(t)
	bad, err := bigquery.New(context.Background(), bigquery.Settings{Project: "acme", Dataset: "nope", Endpoint: bq.URL}, bigquery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("missing dataset: %v", err)
	}
	tables, err := open(t, bq, "").Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].ID != "shop.orders" || tables[0].Rows != 5 || tables[0].PartitionBy != "ordered_on" ||
		len(tables[0].Columns) != 7 || tables[0].Columns[3].Type != store.TypeDate {
		t.Fatalf("tables: %+v", tables)
	}
	if _, err := bigquery.New(context.Background(), bigquery.Settings{Project: "acme"}, bigquery.Options{}); err == nil {
		t.Fatal("a missing dataset setting must be an error")
	}
	if _, err := bigquery.New(context.Background(), bigquery.Settings{Project: "acme", Dataset: "d", MaxBytes: "lots"}, bigquery.Options{}); err == nil {
		t.Fatal("a bad max_bytes must be an error")
	}
}
