package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// duck is DuckDB, the independent reader every statistic is checked against.
func duck(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // SET statements apply to the one connection
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	return db
}

func exec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
}

// num runs a query returning one number (NULL as NaN).
func num(t *testing.T, db *sql.DB, q string) float64 {
	t.Helper()
	var v sql.NullFloat64
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	if !v.Valid {
		return math.NaN()
	}
	return v.Float64
}

func text(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var v sql.NullString
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return v.String
}

// same checks a profile figure against DuckDB's value rounded to 2 decimals; decimals that
// DuckDB rounds to their own scale first may differ in the last digit.
func same(t *testing.T, what string, got Float, want float64) {
	t.Helper()
	if math.IsNaN(want) {
		if got.Valid() {
			t.Errorf("%s = %v, DuckDB says NULL", what, float64(got))
		}
		return
	}
	w := math.Round(want*100) / 100
	if !got.Valid() || math.Abs(float64(got)-w) > 0.0100001*math.Max(1, math.Abs(w)*1e-9) {
		t.Errorf("%s = %v, DuckDB says %v (%v)", what, float64(got), w, want)
	}
}

func sameInt(t *testing.T, what string, got int64, want float64) {
	t.Helper()
	if float64(got) != want {
		t.Errorf("%s = %d, DuckDB says %v", what, got, want)
	}
}

// goldenSQL builds a table with every kind of column: nulls, zeros and negatives, repeated
// and unique values, a constant and an all-null column.
const goldenSQL = `SELECT i AS id,
 CASE WHEN i % 7 = 0 THEN NULL ELSE (hash(i) % 200)::INTEGER - 50 END AS qty,
 ((hash(i * 3) % 100000) / 100)::DECIMAL(10,2) AS price,
 CASE WHEN i % 3 = 0 THEN NULL ELSE (hash(i * 5) % 1000000) / 7919.0 END AS score,
 (i % 4)::SMALLINT AS small,
 CASE WHEN i % 11 = 0 THEN NULL ELSE i % 5 = 0 END AS flag,
 DATE '2021-02-03' + (hash(i * 7) % 900)::INTEGER AS day,
 TIMESTAMP '2022-01-01 10:00:00' + to_seconds((hash(i * 9) % 50000000)::BIGINT) AS ts,
 TIMESTAMPTZ '2023-06-30 23:30:00+00' + to_microseconds((hash(i * 13) % 90000000000)::BIGINT) AS tstz,
 CASE WHEN i % 13 = 0 THEN NULL WHEN i % 10 < 7 THEN 'paid' ELSE (['new','shipped','void','returned'])[1 + i % 4] END AS status,
 'user' || (hash(i * 17) % 900) || '@example.com' AS email,
 'same' AS konst,
 NULL::INTEGER AS nothing,
 (hash(i * 19) % 3)::INTEGER AS zero_heavy
 FROM range({rows}) t(i)`

func golden(rows int) string { return strings.ReplaceAll(goldenSQL, "{rows}", fmt.Sprint(rows)) }

func writeParquet(t *testing.T, db *sql.DB, query, path string) {
	t.Helper()
	exec(t, db, fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 700)", query, path))
}

func TestProfileMatchesDuckDB(t *testing.T) {
	db := duck(t)
	path := filepath.Join(t.TempDir(), "golden.parquet")
	writeParquet(t, db, golden(2500), path)
	p, err := ProfileParquet(context.Background(), path, Options{PrimaryKey: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstDuckDB(t, db, p, fmt.Sprintf("read_parquet('%s')", path))
	if p.RowCount != 2500 || p.ColumnCount != 14 || p.Sampled || p.DuplicateRows != 0 {
		t.Errorf("rows %d, columns %d, sampled %v, duplicates %d", p.RowCount, p.ColumnCount, p.Sampled, p.DuplicateRows)
	}
	col := columnsByName(p)
	if !col["id"].IsPrimaryKey || col["qty"].IsPrimaryKey {
		t.Error("primary key flag wrong")
	}
	wantAlerts := map[string][]string{
		"id": {"unique"}, "konst": {"constant"}, "nothing": {"high_missing"}, "score": {"high_missing"},
		"qty": {"missing"}, "status": {"missing", "imbalance"}, "email": {"high_cardinality"}, "zero_heavy": {},
	}
	for name, want := range wantAlerts {
		var got []string
		for _, a := range col[name].Alerts {
			got = append(got, a.Type)
			if !strings.Contains(a.Message, name) {
				t.Errorf("%s alert message %q does not name the column", name, a.Message)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s alerts = %v, want %v", name, got, want)
		}
	}
	if p.DateRange == nil || p.DateRange.Column != "day" {
		t.Errorf("date range %+v, want from column day", p.DateRange)
	}
	if got := p.VariableTypes; got[Numeric] != 7 || got[String] != 3 || got[Date] != 1 || got[Timestamp] != 2 || got[Boolean] != 1 {
		t.Errorf("variable types %v", got)
	}
	// The first rows, in order, as text.
	for r := range 5 {
		row := p.SampleRows[r]
		for c, name := range row.Columns {
			want := text(t, db, fmt.Sprintf(`SELECT "%s"::VARCHAR FROM read_parquet('%s', file_row_number = true) WHERE file_row_number = %d`, name, path, r))
			got := ""
			if row.Values[c] != nil {
				got = *row.Values[c]
			}
			if name != "score" && got != want { // DuckDB prints doubles with its own shortest form
				t.Errorf("sample row %d %s = %q, DuckDB says %q", r, name, got, want)
			}
		}
	}
}

func columnsByName(p *TableProfile) map[string]ColumnProfile {
	m := map[string]ColumnProfile{}
	for _, c := range p.Columns {
		m[c.Name] = c
	}
	return m
}

// checkAgainstDuckDB compares every column statistic with DuckDB's own aggregate over src.
func checkAgainstDuckDB(t *testing.T, db *sql.DB, p *TableProfile, src string) {
	t.Helper()
	rows := num(t, db, "SELECT count(*) FROM "+src)
	for _, c := range p.Columns {
		q := func(agg string) float64 {
			if strings.Contains(agg, " FROM ") {
				return num(t, db, "SELECT "+agg)
			}
			return num(t, db, fmt.Sprintf("SELECT %s FROM %s", agg, src))
		}
		col := fmt.Sprintf("%q", c.Name)
		name := c.Name + "."
		sameInt(t, name+"null_count", c.NullCount, q("count(*) - count("+col+")"))
		sameInt(t, name+"unique_count", c.UniqueCount, q("count(DISTINCT "+col+")"))
		same(t, name+"completeness_pct", c.CompletenessPct, 100*q("count("+col+")")/rows)
		typ := text(t, db, fmt.Sprintf("SELECT typeof(%s) FROM %s LIMIT 1", col, src))
		if c.Type != typ {
			t.Errorf("%stype = %s, DuckDB says %s", name, c.Type, typ)
		}
		switch c.TypeCategory {
		case Numeric:
			s := c.NumericStats
			same(t, name+"min", s.Min, q("min("+col+")"))
			same(t, name+"max", s.Max, q("max("+col+")"))
			same(t, name+"mean", s.Mean, q("avg("+col+")"))
			same(t, name+"median", s.Median, q("median("+col+")"))
			same(t, name+"stddev", s.Stddev, q("stddev_samp("+col+")"))
			for _, pq := range []struct {
				got Float
				q   string
			}{{s.P5, "0.05"}, {s.P25, "0.25"}, {s.P75, "0.75"}, {s.P95, "0.95"}} {
				same(t, name+"p"+pq.q, pq.got, q("quantile_cont("+col+", "+pq.q+")"))
			}
			sameInt(t, name+"zeros", s.Zeros, q("coalesce(count_if("+col+" = 0), 0)"))
			sameInt(t, name+"negative", s.Negative, q("coalesce(count_if("+col+" < 0), 0)"))
			if s.Histogram != nil {
				var total int64
				for _, n := range s.Histogram.Counts {
					total += n
				}
				if len(s.Histogram.Counts) != 15 || len(s.Histogram.Bins) != 15 {
					t.Errorf("%shistogram has %d bins", name, len(s.Histogram.Counts))
				}
				sameInt(t, name+"histogram total", total, q("count("+col+")"))
				// 15 equal bins from min to max, max in the last one.
				lo, hi := fmt.Sprintf("min(%s) OVER ()::DOUBLE", col), fmt.Sprintf("max(%s) OVER ()::DOUBLE", col)
				for b, n := range s.Histogram.Counts {
					want := q(fmt.Sprintf("count_if(least(floor((x - lo) / ((hi - lo) / 15)), 14) = %d) FROM (SELECT %s::DOUBLE AS x, %s AS lo, %s AS hi FROM %s) WHERE x IS NOT NULL", b, col, lo, hi, src))
					sameInt(t, fmt.Sprintf("%shistogram[%d]", name, b), n, want)
				}
			}
		case String:
			s := c.StringStats
			if c.NullCount < int64(rows) {
				sameInt(t, name+"min_length", int64(s.MinLength), q("min(length("+col+"))"))
				sameInt(t, name+"max_length", int64(s.MaxLength), q("max(length("+col+"))"))
				same(t, name+"avg_length", s.AvgLength, q("avg(length("+col+"))"))
			}
			if c.UniqueCount <= 50 {
				if len(s.TopValues) != min(int(c.UniqueCount), 10) {
					t.Errorf("%stop_values has %d values", name, len(s.TopValues))
				}
				for _, tv := range s.TopValues {
					sameInt(t, name+"top "+tv.Value, tv.Count, q(fmt.Sprintf("count_if(%s = '%s')", col, tv.Value)))
				}
			} else if len(s.TopValues) != 0 {
				t.Errorf("%stop_values for a high-cardinality column", name)
			}
		case Date, Timestamp:
			s := c.DateStats
			if s == nil {
				t.Fatalf("%s: no date stats", c.Name)
			}
			if want := text(t, db, "SELECT min("+col+")::DATE::VARCHAR FROM "+src); s.Earliest != want {
				t.Errorf("%searliest = %s, DuckDB says %s", name, s.Earliest, want)
			}
			if want := text(t, db, "SELECT max("+col+")::DATE::VARCHAR FROM "+src); s.Latest != want {
				t.Errorf("%slatest = %s, DuckDB says %s", name, s.Latest, want)
			}
			sameInt(t, name+"span_days", s.SpanDays, q("max("+col+")::DATE - min("+col+")::DATE"))
			for i, bin := range s.Histogram.Bins {
				want := q(fmt.Sprintf("count_if(strftime(%s::DATE, '%%Y') || '-Q' || quarter(%s::DATE) = '%s')", col, col, bin))
				sameInt(t, name+"quarter "+bin, s.Histogram.Counts[i], want)
			}
			sameInt(t, name+"quarters", int64(len(s.Histogram.Bins)), q("count(DISTINCT date_trunc('quarter', "+col+"::DATE))"))
		case Boolean:
			s := c.BooleanStats
			sameInt(t, name+"true_count", s.TrueCount, q("count_if("+col+")"))
			sameInt(t, name+"false_count", s.FalseCount, q("count_if(NOT "+col+")"))
		}
	}
}

func TestProfilePartitionsUnionByName(t *testing.T) {
	db := duck(t)
	dir := t.TempDir()
	// The later partition widens qty to BIGINT, turns small into DOUBLE and adds a column.
	writeParquet(t, db, golden(900), filepath.Join(dir, "2024_01.parquet"))
	writeParquet(t, db, `SELECT i + 10000 AS id, (i * 1000000000)::BIGINT AS qty, i / 3.0 AS small,
		'extra ' || (i % 60) AS added, DATE '2024-02-01' + (i % 29)::INTEGER AS day
		FROM range(600) t(i)`, filepath.Join(dir, "2024_02.parquet"))
	// Files being written are hidden and not part of the table.
	if err := os.WriteFile(filepath.Join(dir, ".2024_03.parquet.tmp-1"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ProfileParquet(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.RowCount != 1500 || p.Files != 2 || p.ColumnCount != 15 {
		t.Errorf("rows %d, files %d, columns %d", p.RowCount, p.Files, p.ColumnCount)
	}
	checkAgainstDuckDB(t, db, p, fmt.Sprintf("read_parquet('%s/*.parquet', union_by_name = true)", dir))
}

func TestProfileSampledAboveLimit(t *testing.T) {
	db := duck(t)
	path := filepath.Join(t.TempDir(), "big.parquet")
	writeParquet(t, db, golden(3000), path)
	p, err := ProfileParquet(context.Background(), path, Options{SampleAbove: 1000, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Sampled || p.RowCount != 3000 || p.SampledRows != 1000 {
		t.Fatalf("sampled %v, rows %d, sampled rows %d; want every 3rd of 3000 rows", p.Sampled, p.RowCount, p.SampledRows)
	}
	// Every 3rd row, the same rows for every column.
	checkAgainstDuckDB(t, db, p, fmt.Sprintf("(SELECT * EXCLUDE (file_row_number) FROM read_parquet('%s', file_row_number = true) WHERE file_row_number %% 3 = 0)", path))
}

func TestProfileDuplicateKeys(t *testing.T) {
	db := duck(t)
	path := filepath.Join(t.TempDir(), "dup.parquet")
	writeParquet(t, db, `SELECT i % 40 AS a, CASE WHEN i % 9 = 0 THEN NULL ELSE (i % 3)::VARCHAR END AS b, i AS c FROM range(300) t(i)`, path)
	for _, pk := range [][]string{{"a", "b"}, {"a"}, {"c"}} {
		p, err := ProfileParquet(context.Background(), path, Options{PrimaryKey: pk})
		if err != nil {
			t.Fatal(err)
		}
		cols := strings.Join(pk, ", ")
		want := num(t, db, fmt.Sprintf("SELECT count(*) - count(DISTINCT (%s)) FROM '%s'", cols, path))
		sameInt(t, "duplicate_rows of ("+cols+")", p.DuplicateRows, want)
	}
}

func TestProfileEmptyAndMissing(t *testing.T) {
	db := duck(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "empty.parquet")
	writeParquet(t, db, "SELECT 1::INTEGER AS n, 'x' AS s, DATE '2020-01-01' AS d FROM range(0)", path)
	p, err := ProfileParquet(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.RowCount != 0 || len(p.Columns) != 3 || len(p.SampleRows) != 0 {
		t.Errorf("empty table: %+v", p)
	}
	// A profile of an empty table is still valid JSON: NaN statistics are null.
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"min":null`) {
		t.Errorf("empty numeric column should have null min: %s", data)
	}
	if _, err := ProfileParquet(context.Background(), filepath.Join(dir, "nope"), Options{}); !os.IsNotExist(err) {
		t.Errorf("missing table: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "part"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ProfileParquet(context.Background(), filepath.Join(dir, "part"), Options{}); err == nil || !strings.Contains(err.Error(), "no Parquet files") {
		t.Errorf("empty folder: %v", err)
	}
	bad := filepath.Join(dir, "bad.parquet")
	os.WriteFile(bad, []byte("not parquet at all"), 0o644)
	if _, err := ProfileParquet(context.Background(), bad, Options{}); err == nil || !strings.Contains(err.Error(), "bad.parquet") {
		t.Errorf("corrupt file: %v", err)
	}
}

func TestFloatJSON(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{{1.005, "1"}, {2.346, "2.35"}, {-0.004, "0"}, {math.NaN(), "null"}, {math.Inf(1), "null"}, {math.Inf(-1), "null"}, {1e300, "1e+300"}, {12345678.125, "12345678.13"}} {
		data, err := json.Marshal(F(c.f))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(data); got != c.want && !(c.f == 1e300 && strings.HasPrefix(got, "1")) {
			t.Errorf("F(%v) = %s, want %s", c.f, got, c.want)
		}
	}
}

func TestRadixSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := map[string][]uint64{}
	for _, n := range []int{0, 1, 255, 256, 5000, 1<<16 + 1, 300_000} {
		random, skewed, few, small := make([]uint64, n), make([]uint64, n), make([]uint64, n), make([]uint64, n)
		for i := range n {
			random[i] = rng.Uint64()
			if rng.IntN(10) == 0 { // a tenth anywhere, the rest in one top-byte bucket
				skewed[i] = rng.Uint64()
			} else {
				skewed[i] = 0x42<<56 | rng.Uint64N(1<<40)
			}
			few[i] = uint64(rng.IntN(3)) << 60
			small[i] = uint64(i*7919%5000) << (i % 3 * 8)
		}
		for name, keys := range map[string][]uint64{"random": random, "skewed": skewed, "few": few, "small": small} {
			inputs[fmt.Sprintf("%s/%d", name, n)] = keys
		}
	}
	scratch := new([]uint64)
	for name, keys := range inputs {
		want := slices.Clone(keys)
		slices.Sort(want)
		radixSort(keys, scratch)
		if !slices.Equal(keys, want) {
			t.Errorf("%s: not sorted, or keys changed", name)
		}
	}
	if cap(*scratch) > lsdMax {
		t.Errorf("scratch of %d keys; the sort must need at most %d beside the keys", cap(*scratch), lsdMax)
	}
	for _, f := range []float64{-1e9, -2.5, -0.0, 0, 1e-9, 3, math.Inf(1)} {
		if keyFloat(floatKey(f)) != f {
			t.Errorf("float key round trip of %v", f)
		}
	}
	if floatKey(-2.5) >= floatKey(-1) || floatKey(-1) >= floatKey(0) || floatKey(0) >= floatKey(0.5) {
		t.Error("float keys out of order")
	}
}
