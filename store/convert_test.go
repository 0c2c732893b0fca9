package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// duck opens an in-memory DuckDB, the independent reader of everything written here.
func duck(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // one connection, so SET statements apply to every query
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("SET TimeZone='UTC'"); err != nil {
		t.Fatal(err)
	}
	return db
}

// rows runs q and returns each row as its values joined by "|" (NULL for null).
func rows(t testing.TB, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rs, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var out []string
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "NULL"
			case time.Time:
				parts[i] = v.UTC().Format("2006-01-02 15:04:05.999999")
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func describeTypes(t testing.TB, db *sql.DB, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range rows(t, db, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))", path) {
		name, typ, _ := strings.Cut(r, "|")
		out[name] = typ
	}
	return out
}

func writeFile(t testing.TB, dir, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func convert(t testing.TB, files []string, opts ConvertOptions) (string, *ConvertReport) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.parquet")
	rep, err := ConvertCSV(context.Background(), files, opts, out)
	if err != nil {
		t.Fatal(err)
	}
	return out, rep
}

func equalRows(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows differ\n got: %q\nwant: %q", got, want)
	}
}

var header = CSVFormat{Header: true}

func TestConvertDeclaredTypes(t *testing.T) {
	dir := t.TempDir()
	csv := "s,i,n,d,b,dt,ts,tz,x\n" +
		"hello,42,1.5,1234.565,true,2024-02-29,2024-01-02 03:04:05.123456,2024-01-02T03:04:05+02:00,raw\n" +
		"\"a,b\",-7,-0.25,-0.01,F,2024-03-01 13:45:00,2024-01-02T03:04:05Z,2024-06-01 12:00:00Z,\n" +
		",,,,,,,,\n" +
		"x,12.00,1e3,99999999.99,yes,2024-12-31T23:59:59Z,2024-07-01,2024-07-01 00:00:00-05:30,y\n"
	in := writeFile(t, dir, "t.csv", []byte(csv))
	cols := []Column{{Name: "s", Type: "VARCHAR(20)"}, {Name: "i", Type: "BIGINT"}, {Name: "n", Type: "FLOAT"},
		{Name: "d", Type: "DECIMAL(10,2)"}, {Name: "b", Type: "boolean"}, {Name: "dt", Type: "DATE"},
		{Name: "ts", Type: "TIMESTAMP_NTZ"}, {Name: "tz", Type: "TIMESTAMP_TZ"}, {Name: "x", Type: "GEOGRAPHY"}}
	out, rep := convert(t, []string{in}, ConvertOptions{Format: header, Columns: cols, Metadata: map[string]string{"table_id": "in.c-x.t"}})
	db := duck(t)
	want := map[string]string{"s": "VARCHAR", "i": "BIGINT", "n": "DOUBLE", "d": "DECIMAL(10,2)", "b": "BOOLEAN",
		"dt": "DATE", "ts": "TIMESTAMP", "tz": "TIMESTAMP WITH TIME ZONE", "x": "VARCHAR"}
	got := describeTypes(t, db, out)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s: DuckDB type %s, want %s", k, got[k], v)
		}
	}
	equalRows(t, rows(t, db, "SELECT s, i, n, d::VARCHAR, b, dt::VARCHAR, ts::VARCHAR, tz::VARCHAR, x FROM read_parquet(?)", out), []string{
		"hello|42|1.5|1234.57|true|2024-02-29|2024-01-02 03:04:05.123456|2024-01-02 01:04:05+00|raw",
		"a,b|-7|-0.25|-0.01|false|2024-03-01|2024-01-02 03:04:05|2024-06-01 12:00:00+00|NULL",
		"NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL",
		"x|12|1000|99999999.99|true|2024-12-31|2024-07-01 00:00:00|2024-07-01 05:30:00+00|y",
	})
	if rep.Rows != 4 || len(rep.Warnings) != 0 {
		t.Errorf("report rows %d warnings %v", rep.Rows, rep.Warnings)
	}
	if rep.Columns[3].Type != "DECIMAL(10,2)" || rep.Columns[8].Type != TypeString {
		t.Errorf("report columns %v", rep.Columns)
	}
	equalRows(t, rows(t, db, "SELECT value::VARCHAR FROM parquet_kv_metadata(?) WHERE key::VARCHAR = 'table_id'", out), []string{"in.c-x.t"})
}

func TestConvertDecimalPrecision(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "d.csv", []byte("big,small\n"+
		"12345678901234567890123456.123456789012,0.005\n"+
		"-0.000000000001,-0.004\n"+
		"1E+3,1000\n"+
		"abc,1.5e-2\n"))
	cols := []Column{{Name: "big", Type: "NUMERIC(38,12)"}, {Name: "small", Type: "DECIMAL(4,2)"}}
	out, rep := convert(t, []string{in}, ConvertOptions{Format: header, Columns: cols})
	db := duck(t)
	equalRows(t, rows(t, db, "SELECT big::VARCHAR, small::VARCHAR FROM read_parquet(?)", out), []string{
		"12345678901234567890123456.123456789012|0.01",
		"-0.000000000001|0.00",
		"1000.000000000000|NULL",
		"NULL|0.02",
	})
	if len(rep.Warnings) != 2 {
		t.Fatalf("warnings %+v", rep.Warnings)
	}
	w := rep.Warnings[0]
	if w.Column != "big" || w.Count != 1 || w.FirstRow != 4 || w.Example != "abc" || w.File != in {
		t.Errorf("warning %+v", w)
	}
	if w := rep.Warnings[1]; w.Column != "small" || w.FirstRow != 3 || w.Example != "1000" {
		t.Errorf("warning %+v", w)
	}
}

func TestConvertInvalidValuesBecomeNullWithWarning(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "w.csv", []byte("id,n,flag,day,at\n1,5,true,2024-01-01,2024-01-01 10:00\n2,x,maybe,0000-00-00,yesterday\n3,7.5,0,2024-13-01,2024-01-01 25:00\n4,,,,\n"))
	cols := []Column{{Name: "id", Type: "INTEGER"}, {Name: "n", Type: "INTEGER"}, {Name: "flag", Type: "BOOLEAN"}, {Name: "day", Type: "DATE"}, {Name: "at", Type: "TIMESTAMP"}}
	out, rep := convert(t, []string{in}, ConvertOptions{Format: header, Columns: cols})
	db := duck(t)
	equalRows(t, rows(t, db, "SELECT id, n, flag, day::VARCHAR, \"at\"::VARCHAR FROM read_parquet(?) ORDER BY id", out), []string{
		"1|5|true|2024-01-01|2024-01-01 10:00:00",
		"2|NULL|NULL|NULL|NULL",
		"3|NULL|false|NULL|NULL",
		"4|NULL|NULL|NULL|NULL",
	})
	got := map[string]ConversionWarning{}
	for _, w := range rep.Warnings {
		got[w.Column] = w
	}
	for col, want := range map[string]ConversionWarning{
		"n":    {Column: "n", Count: 2, FirstRow: 2, Example: "x"},
		"flag": {Column: "flag", Count: 1, FirstRow: 2, Example: "maybe"},
		"day":  {Column: "day", Count: 2, FirstRow: 2, Example: "0000-00-00"},
		"at":   {Column: "at", Count: 2, FirstRow: 2, Example: "yesterday"},
	} {
		w := got[col]
		if w.Count != want.Count || w.FirstRow != want.FirstRow || w.Example != want.Example || w.Reason == "" {
			t.Errorf("column %s: warning %+v, want %+v", col, w, want)
		}
	}
	if len(rep.Warnings) != 4 {
		t.Errorf("warnings %+v", rep.Warnings)
	}
}

func TestConvertAllNullTypedColumnKeepsType(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "n.csv", []byte("a,b,c\n1,,\n2,,\n"))
	out, _ := convert(t, []string{in}, ConvertOptions{Format: header, Columns: []Column{{Name: "b", Type: "DATE"}, {Name: "c", Type: "DECIMAL(5,1)"}}})
	got := describeTypes(t, duck(t), out)
	if got["a"] != "BIGINT" || got["b"] != "DATE" || got["c"] != "DECIMAL(5,1)" {
		t.Errorf("types %v", got)
	}
}

func TestConvertInference(t *testing.T) {
	dir := t.TempDir()
	csv := "flag,count,price,zip,day,at,atz,mixed,empty,bits,bigid,hugeid,mixts\n" +
		"true,1,1.5,007,2024-01-01,2024-01-01 10:00:00,2024-01-01T10:00:00Z,1,,0,12345678901234567,123456789012345678901234,2024-01-01\n" +
		"F,-20,2,010,2024-02-29,2024-01-01T11:30:00.5,2024-01-01 10:00:00+01:00,x,,1,1,1,2024-01-01 10:00:00+01:00\n" +
		",,,,,,,,,,,,\n" +
		"YES,3,-0.001,123,2023-12-31,2024-03-03 00:00,2024-01-01 10:00:00,2.5,,1,2,2,2024-01-01 10:00:00\n"
	in := writeFile(t, dir, "i.csv", []byte(csv))
	out, rep := convert(t, []string{in}, ConvertOptions{Format: header})
	want := map[string]string{"flag": "BOOLEAN", "count": "BIGINT", "price": "DOUBLE", "zip": "VARCHAR", "day": "DATE",
		"at": "TIMESTAMP", "atz": "TIMESTAMP WITH TIME ZONE", "mixed": "VARCHAR", "empty": "VARCHAR", "bits": "BIGINT",
		"bigid": "BIGINT", "hugeid": "VARCHAR", "mixts": "TIMESTAMP WITH TIME ZONE"}
	db := duck(t)
	got := describeTypes(t, db, out)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s inferred as %s, want %s", k, got[k], v)
		}
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("inferred types must not produce warnings: %+v", rep.Warnings)
	}
	equalRows(t, rows(t, db, "SELECT flag, count, price, zip, day::VARCHAR, \"at\"::VARCHAR, atz::VARCHAR, mixed, bigid, hugeid, mixts::VARCHAR FROM read_parquet(?)", out), []string{
		"true|1|1.5|007|2024-01-01|2024-01-01 10:00:00|2024-01-01 10:00:00+00|1|12345678901234567|123456789012345678901234|2024-01-01 00:00:00+00",
		"false|-20|2|010|2024-02-29|2024-01-01 11:30:00.5|2024-01-01 09:00:00+00|x|1|1|2024-01-01 09:00:00+00",
		"NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL",
		"true|3|-0.001|123|2023-12-31|2024-03-03 00:00:00|2024-01-01 10:00:00+00|2.5|2|2|2024-01-01 10:00:00+00",
	})
	for _, c := range rep.Columns {
		if c.Name == "price" && c.Type != TypeNumeric {
			t.Errorf("report type of price %s", c.Type)
		}
	}
}

func TestConvertQuotingAndLineEnds(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "q.csv", []byte("id,text\r\n1,\"line one\nline two\"\r\n2,\"say \"\"hi\"\"\"\r\n\r\n3,plain\r\n4,\"\"\r\n5,\"a,b\""))
	out, rep := convert(t, []string{in}, ConvertOptions{Format: header})
	if rep.Rows != 5 {
		t.Errorf("rows %d, want 5 (a quoted newline is not a row, a blank line is skipped)", rep.Rows)
	}
	equalRows(t, rows(t, duck(t), "SELECT id, replace(text, chr(10), '\\n') FROM read_parquet(?)", out), []string{
		`1|line one\nline two`, `2|say "hi"`, `3|plain`, `4|NULL`, `5|a,b`,
	})
}

func TestConvertEncodingsAndCompression(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("\xEF\xBB\xBFname,n\nZoë,1\n"))
	zw.Close()
	cases := []struct {
		name    string
		content []byte
		enc     string
		want    string
	}{
		{"bom.csv", []byte("\xEF\xBB\xBFname,n\nZoë,1\n"), "", "Zoë"},
		{"gz.csv", gz.Bytes(), "utf-8", "Zoë"},
		{"latin1.csv", []byte("name,n\nZo\xEB,1\n"), "latin-1", "Zoë"},
		{"cp1252.csv", []byte("name,n\n\x80 5 \x93q\x94,1\n"), "windows-1252", "€ 5 “q”"},
	}
	db := duck(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := writeFile(t, dir, c.name, c.content)
			out, _ := convert(t, []string{in}, ConvertOptions{Format: CSVFormat{Header: true, Encoding: c.enc}})
			equalRows(t, rows(t, db, "SELECT name, n FROM read_parquet(?)", out), []string{c.want + "|1"})
		})
	}
}

func TestConvertHeaderlessWithColumnsAndDelimiter(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "h.tsv", []byte("1\t'x\ty'\t2024-01-01\n2\t\t\n"))
	out, _ := convert(t, []string{in}, ConvertOptions{
		Format:  CSVFormat{Delimiter: '\t', Quote: '\''},
		Columns: []Column{{Name: "id", Type: "INTEGER"}, {Name: "label"}, {Name: "day"}},
	})
	db := duck(t)
	equalRows(t, rows(t, db, "SELECT id, label, day::VARCHAR FROM read_parquet(?)", out), []string{"1|x\ty|2024-01-01", "2|NULL|NULL"})
	if got := describeTypes(t, db, out); got["day"] != "DATE" || got["id"] != "BIGINT" {
		t.Errorf("types %v", got)
	}
	if _, err := ConvertCSV(context.Background(), []string{in}, ConvertOptions{}, filepath.Join(dir, "x.parquet")); err == nil || !strings.Contains(err.Error(), "h.tsv") {
		t.Errorf("headerless without columns: %v", err)
	}
}

func TestConvertMultipleFiles(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.csv", []byte("id,v\n1,x\n2,y\n"))
	b := writeFile(t, dir, "b.csv", []byte("id,v\n3,z\n"))
	c := writeFile(t, dir, "c.csv", []byte("id,v\n"))
	out, rep := convert(t, []string{a, c, b}, ConvertOptions{Format: header})
	if rep.Rows != 3 {
		t.Errorf("rows %d", rep.Rows)
	}
	equalRows(t, rows(t, duck(t), "SELECT id, v FROM read_parquet(?)", out), []string{"1|x", "2|y", "3|z"})

	bad := writeFile(t, dir, "bad.csv", []byte("id,value\n4,w\n"))
	_, err := ConvertCSV(context.Background(), []string{a, bad}, ConvertOptions{Format: header}, filepath.Join(dir, "o.parquet"))
	if err == nil || !strings.Contains(err.Error(), "bad.csv") || !strings.Contains(err.Error(), "header") {
		t.Errorf("header mismatch error %v", err)
	}
	// A warning names the file and its own row number.
	w := writeFile(t, dir, "w.csv", []byte("id,v\n5,q\nnope,r\n"))
	_, rep = convert(t, []string{a, w}, ConvertOptions{Format: header, Columns: []Column{{Name: "id", Type: "INTEGER"}}})
	if len(rep.Warnings) != 1 || rep.Warnings[0].File != w || rep.Warnings[0].FirstRow != 2 {
		t.Errorf("warnings %+v", rep.Warnings)
	}
}

func TestConvertMalformedRowsAreErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"fields.csv":   "a,b\n1,2\n3\n",
		"extra.csv":    "a,b\n1,2\n3,4,5\n",
		"quote.csv":    "a,b\n1,2\n3,x\"y\n",
		"after.csv":    "a,b\n1,2\n3,\"x\"y\n",
		"unclosed.csv": "a,b\n1,2\n3,\"xy\n4,5\n",
	}
	for name, content := range cases {
		in := writeFile(t, dir, name, []byte(content))
		_, err := ConvertCSV(context.Background(), []string{in}, ConvertOptions{Format: header}, filepath.Join(dir, name+".parquet"))
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "row 2") || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("%s: error %v, want one naming the file, row 2 and line 3", name, err)
		}
	}
}

func TestConvertFailureKeepsPreviousFile(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.csv", []byte("id\n1\n2\n"))
	out := filepath.Join(dir, "t.parquet")
	if _, err := ConvertCSV(context.Background(), []string{good}, ConvertOptions{Format: header}, out); err != nil {
		t.Fatal(err)
	}
	// A bad row far after the first row group: the writer has already written data when it fails.
	var sb strings.Builder
	sb.WriteString("id\n")
	for i := range 5000 {
		fmt.Fprintf(&sb, "%d\n", i)
	}
	sb.WriteString("1,2\n")
	bad := writeFile(t, dir, "bad.csv", []byte(sb.String()))
	if _, err := ConvertCSV(context.Background(), []string{bad}, ConvertOptions{Format: header, RowGroupRows: 1000}, out); err == nil {
		t.Fatal("want an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err := ConvertCSV(ctx, []string{bad}, ConvertOptions{Format: header, RowGroupRows: 1000, Progress: func(_, rows int64) {
		if rows >= 2000 {
			cancel()
		}
	}}, out)
	if err == nil {
		t.Fatal("want a cancellation error")
	}
	equalRows(t, rows(t, duck(t), "SELECT count(*), sum(id) FROM read_parquet(?)", out), []string{"2|3"})
	left, _ := filepath.Glob(filepath.Join(dir, ".t.parquet.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestConvertManyRowGroups(t *testing.T) {
	dir := t.TempDir()
	var sb strings.Builder
	sb.WriteString("id,name,amount,day\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "%d,name %d,%d.25,2024-01-%02d\n", i, i%37, i, i%28+1)
	}
	in := writeFile(t, dir, "m.csv", []byte(sb.String()))
	var progressed int64
	out, rep := convert(t, []string{in}, ConvertOptions{Format: header, RowGroupRows: 1024, Progress: func(b, r int64) { progressed = r }})
	if rep.Rows != 10000 || progressed != 10000 {
		t.Errorf("rows %d, progress %d", rep.Rows, progressed)
	}
	db := duck(t)
	equalRows(t, rows(t, db, "SELECT count(*), sum(id), count(DISTINCT name), sum(amount), min(day)::VARCHAR, max(day)::VARCHAR, sum(length(name)) FROM read_parquet(?)", out),
		rows(t, db, "SELECT count(*), sum(id), count(DISTINCT name), sum(amount), min(day)::VARCHAR, max(day)::VARCHAR, sum(length(name)) FROM read_csv(?, types={'amount': 'DOUBLE'})", in))
	equalRows(t, rows(t, db, "SELECT count(DISTINCT row_group_id) FROM parquet_metadata(?)", out), []string{"10"})
	equalRows(t, rows(t, db, "SELECT DISTINCT compression FROM parquet_metadata(?)", out), []string{"SNAPPY"})
}

func TestConvertInferenceSeesEveryValue(t *testing.T) {
	dir := t.TempDir()
	var sb strings.Builder
	sb.WriteString("code,late,day\n")
	for i := range 3000 {
		late := ""
		if i >= 2500 {
			late = fmt.Sprint(i)
		}
		fmt.Fprintf(&sb, "%d,%s,2024-01-01\n", i+1, late)
	}
	sb.WriteString("A-1,7,2024-01-02 10:00:00\n") // after the first batches: code is text, day has a time
	in := writeFile(t, dir, "late.csv", []byte(sb.String()))
	out, rep := convert(t, []string{in}, ConvertOptions{Format: header, RowGroupRows: 1000})
	db := duck(t)
	got := describeTypes(t, db, out)
	if got["code"] != "VARCHAR" || got["late"] != "BIGINT" || got["day"] != "TIMESTAMP" {
		t.Errorf("types %v", got)
	}
	if len(rep.Warnings) != 0 || rep.Rows != 3001 {
		t.Errorf("rows %d warnings %+v", rep.Rows, rep.Warnings)
	}
	equalRows(t, rows(t, db, "SELECT count(*), count(late), max(code), max(day)::VARCHAR FROM read_parquet(?)", out), []string{"3001|501|A-1|2024-01-02 10:00:00"})
}

func TestConvertTimestampZones(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "z.csv", []byte("id,at,local\n"+
		"1,2024-03-10T12:00:00+0530,2024-03-10T12:00:00.1234567\n"+
		"2,2024-03-10 12:00:00 -05,2024-03-10 12:00\n"+
		"3,2024-03-10 12:00:00 UTC,2024-03-10\n"+
		"4,2024-12-31T23:59:59.999999-01:00,2023-02-29 00:00:00\n"+
		"5,2024-03-10,2024-03-10 24:00:00\n"))
	out, rep := convert(t, []string{in}, ConvertOptions{Format: header, Columns: []Column{{Name: "at", Type: "TIMESTAMP_TZ"}, {Name: "local", Type: "TIMESTAMP"}}})
	equalRows(t, rows(t, duck(t), `SELECT id, "at"::VARCHAR, "local"::VARCHAR FROM read_parquet(?) ORDER BY id`, out), []string{
		"1|2024-03-10 06:30:00+00|2024-03-10 12:00:00.123456",
		"2|2024-03-10 17:00:00+00|2024-03-10 12:00:00",
		"3|2024-03-10 12:00:00+00|2024-03-10 00:00:00",
		"4|2025-01-01 00:59:59.999999+00|NULL",
		"5|2024-03-10 00:00:00+00|NULL",
	})
	if len(rep.Warnings) != 1 || rep.Warnings[0].Column != "local" || rep.Warnings[0].Count != 2 || rep.Warnings[0].FirstRow != 4 {
		t.Errorf("warnings %+v", rep.Warnings)
	}
}

func TestConvertHeaderOnlyAndEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "h.csv", []byte("id,amount,note\n"))
	out, rep := convert(t, []string{in}, ConvertOptions{Format: header, Columns: []Column{{Name: "id", Type: "INTEGER"}, {Name: "amount", Type: "DECIMAL(8,3)"}}})
	db := duck(t)
	if got := describeTypes(t, db, out); got["id"] != "BIGINT" || got["amount"] != "DECIMAL(8,3)" || got["note"] != "VARCHAR" {
		t.Errorf("types of an empty table %v", got)
	}
	equalRows(t, rows(t, db, "SELECT count(*) FROM read_parquet(?)", out), []string{"0"})
	if rep.Rows != 0 {
		t.Errorf("rows %d", rep.Rows)
	}
	empty := writeFile(t, dir, "empty.csv", nil)
	if _, err := ConvertCSV(context.Background(), []string{empty}, ConvertOptions{Format: header}, filepath.Join(dir, "e.parquet")); err == nil || !strings.Contains(err.Error(), "empty.csv") {
		t.Errorf("empty file: %v", err)
	}
}
