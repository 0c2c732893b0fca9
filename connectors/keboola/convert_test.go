package keboola_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/connectors/keboola/keboolatest"
	"github.com/ai-data-analyst/analyst/store"
)

// The extraction is what the transform stage feeds the converter: header-less gzip slices named by
// Columns. DuckDB, reading the Parquet independently, sees the Keboola types and every value.
func TestExtractionConvertsToTypedParquet(t *testing.T) {
	h := newHarness(t, keboolatest.Config{Sliced: true, Provider: "aws", SliceRows: 3})
	ext, err := h.extract(t, connectors.ExtractRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "orders.parquet")
	rep, err := store.ConvertCSV(context.Background(), ext.Files,
		store.ConvertOptions{Format: ext.Format, Columns: ext.Columns}, out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 7 {
		t.Fatalf("%d rows converted", rep.Rows)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	types := map[string]string{}
	rows, err := db.Query(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))`, out)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n, ty string
		if err := rows.Scan(&n, &ty); err != nil {
			t.Fatal(err)
		}
		types[n] = ty
	}
	for col, want := range map[string]string{"id": "BIGINT", "amount": "DECIMAL(12,2)", "price": "DECIMAL(10,4)",
		"created_on": "DATE", "active": "BOOLEAN", "customer": "VARCHAR", "score": "DOUBLE"} {
		if types[col] != want {
			t.Errorf("column %s is %s, want %s (all: %v)", col, types[col], want, types)
		}
	}
	var customer, amount string
	var n int
	err = db.QueryRow(`SELECT customer, amount::VARCHAR, (SELECT count(*) FROM read_parquet(?1) WHERE amount IS NULL)
		FROM read_parquet(?1) WHERE id = 3`, out).Scan(&customer, &amount, &n)
	if err != nil {
		t.Fatal(err)
	}
	if customer != "Čedok\nPraha" || amount != "30.25" || n != 1 {
		t.Errorf("row 3: %q %q, null amounts %d", customer, amount, n)
	}
}
