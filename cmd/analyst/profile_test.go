package main

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

func TestProfileCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "orders.parquet")
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`COPY (SELECT i % 90 AS id, (i * 7 % 100)::DECIMAL(8,2) AS amount,
		CASE WHEN i % 4 = 0 THEN NULL ELSE ['a','b','c'][1 + i % 3] END AS kind
		FROM range(100) t(i)) TO '` + path + `' (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	var median, dups float64
	if err := db.QueryRow(`SELECT median(amount)::DOUBLE, count(*) - count(DISTINCT id) FROM read_parquet(?)`, path).Scan(&median, &dups); err != nil {
		t.Fatal(err)
	}

	out, stderr, code := analyst(t, dir, "profile", path, "--json", "--pk", "id")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var p struct {
		RowCount      int64 `json:"row_count"`
		DuplicateRows int64 `json:"duplicate_rows"`
		Columns       []struct {
			Name         string `json:"name"`
			IsPrimaryKey bool   `json:"is_primary_key"`
			NumericStats *struct {
				Median float64 `json:"median"`
			} `json:"numeric_stats"`
		} `json:"columns"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if p.RowCount != 100 || float64(p.DuplicateRows) != dups || !p.Columns[0].IsPrimaryKey || p.Columns[1].NumericStats.Median != median {
		t.Errorf("profile: %+v (DuckDB: median %v, duplicates %v)", p, median, dups)
	}

	out, _, code = analyst(t, dir, "profile", path)
	for _, want := range []string{"rows 100", "amount", "DECIMAL(8,2)", "kind", `top "a"`, "missing"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("summary lacks %q (exit %d):\n%s", want, code, out)
		}
	}

	_, stderr, code = analyst(t, dir, "profile", filepath.Join(dir, "missing.parquet"))
	if code != 1 || !strings.Contains(stderr, "missing.parquet") {
		t.Errorf("missing file: exit %d, %s", code, stderr)
	}
	if _, _, code = analyst(t, dir, "profile"); code != 2 {
		t.Errorf("no path: exit %d, want 2", code)
	}
}
