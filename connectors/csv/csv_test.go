package csv

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/store"
	_ "github.com/duckdb/duckdb-go/v2"
	"go.yaml.in/yaml/v3"
)

// yamlSettings is a connectors.Settings over a YAML snippet, decoded strictly like the loader.
type yamlSettings struct {
	dir, block string
}

func (s yamlSettings) Decode(v any) error {
	d := yaml.NewDecoder(strings.NewReader(s.block))
	d.KnownFields(true)
	if err := d.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (s yamlSettings) Dir() string { return s.dir }

func open(t *testing.T, dir, block string) *Source {
	t.Helper()
	c, err := connectors.Open("csv", yamlSettings{dir: dir, block: block})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Source)
}

func writeGz(t *testing.T, path, content string) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(content))
	zw.Close()
	testenv.WriteFile(t, path, b.String())
}

func extract(t *testing.T, s *Source, table config.Table) *connectors.Extraction {
	t.Helper()
	ext, err := s.Extract(context.Background(), connectors.ExtractRequest{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	return ext
}

func names(cols []store.Column) []string {
	var out []string
	for _, c := range cols {
		out = append(out, c.Name+":"+c.Type)
	}
	return out
}

func TestOpenSettings(t *testing.T) {
	home := t.TempDir()
	s := open(t, home, "path: src\nwatch: true\nsettle: 500ms\n")
	if s.Base() != filepath.Join(home, "src") || !s.WatchEnabled() || s.Settle() != 500*time.Millisecond {
		t.Fatalf("got base=%s watch=%v settle=%v", s.Base(), s.WatchEnabled(), s.Settle())
	}
	s = open(t, home, "")
	if s.Base() != filepath.Join(home, DefaultPath) || s.WatchEnabled() || s.Settle() != DefaultSettle {
		t.Fatalf("defaults: base=%s watch=%v settle=%v", s.Base(), s.WatchEnabled(), s.Settle())
	}
	_, err := connectors.Open("csv", yamlSettings{dir: home, block: "settle: soon\n"})
	if err == nil || !strings.Contains(err.Error(), "data_source.csv.settle") {
		t.Fatalf("bad settle: %v", err)
	}
	_, err = connectors.Open("csv", yamlSettings{dir: home, block: "pth: x\n"})
	if err == nil || !strings.Contains(err.Error(), "pth") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestCheck(t *testing.T) {
	home := t.TempDir()
	if err := open(t, home, "path: src").Check(context.Background()); err == nil || !strings.Contains(err.Error(), "src") {
		t.Fatalf("missing base folder: %v", err)
	}
	testenv.WriteFile(t, filepath.Join(home, "file"), "x")
	if err := open(t, home, "path: file").Check(context.Background()); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Fatalf("base is a file: %v", err)
	}
	os.Mkdir(filepath.Join(home, "src"), 0o755)
	if err := open(t, home, "path: src").Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestExtractDefaultLocation(t *testing.T) {
	home := t.TempDir()
	s := open(t, home, "path: src")
	testenv.WriteFile(t, filepath.Join(home, "src/orders.csv"), "\ufeffid,amount\n1,2.50\n")
	writeGz(t, filepath.Join(home, "src/items.csv.gz"), "order_id,sku\r\n1,A\r\n")
	testenv.WriteFile(t, filepath.Join(home, "src/plain"), "a;b\n1;2\n")
	testenv.WriteFile(t, filepath.Join(home, "src/plain.csv"), "not,this\n")

	ext := extract(t, s, config.Table{ID: "orders"})
	want := store.CSVFormat{Delimiter: ',', Quote: '"', Header: true, Encoding: "utf-8"}
	if !reflect.DeepEqual(ext.Files, []string{filepath.Join(home, "src/orders.csv")}) || ext.Temporary || ext.Format != want {
		t.Fatalf("orders: %+v", ext)
	}
	if got := names(ext.Columns); !reflect.DeepEqual(got, []string{"id:", "amount:"}) {
		t.Fatalf("columns (BOM stripped, types empty): %v", got)
	}
	ext = extract(t, s, config.Table{ID: "items"})
	if got := names(ext.Columns); !reflect.DeepEqual(got, []string{"order_id:", "sku:"}) || !strings.HasSuffix(ext.Files[0], ".csv.gz") {
		t.Fatalf("gz: %v %v", ext.Files, got)
	}
	// The id as-is wins over id.csv.
	ext = extract(t, s, config.Table{ID: "plain", CSV: &config.CSVTable{Delimiter: ";"}})
	if !strings.HasSuffix(ext.Files[0], "plain") || ext.Format.Delimiter != ';' || len(ext.Columns) != 2 {
		t.Fatalf("as-is: %+v", ext)
	}
}

func TestExtractFolderAndGlob(t *testing.T) {
	home := t.TempDir()
	s := open(t, home, "path: src")
	dir := filepath.Join(home, "src/drops")
	testenv.WriteFile(t, filepath.Join(dir, "2024-01-02.csv"), "id,v\n2,b\n")
	writeGz(t, filepath.Join(dir, "2024-01-01.csv.gz"), "id,v\n1,a\n")
	testenv.WriteFile(t, filepath.Join(dir, "2024-01-03.csv.tmp"), "partial")
	testenv.WriteFile(t, filepath.Join(dir, ".2024-01-04.csv"), "hidden")
	testenv.WriteFile(t, filepath.Join(dir, "README.txt"), "notes")
	os.Mkdir(filepath.Join(dir, "old.csv"), 0o755)

	ext := extract(t, s, config.Table{ID: "events", CSV: &config.CSVTable{Path: "drops"}})
	want := []string{filepath.Join(dir, "2024-01-01.csv.gz"), filepath.Join(dir, "2024-01-02.csv")}
	if !reflect.DeepEqual(ext.Files, want) {
		t.Fatalf("folder files: %v", ext.Files)
	}
	// Default location that is a folder.
	if ext := extract(t, s, config.Table{ID: "drops"}); !reflect.DeepEqual(ext.Files, want) {
		t.Fatalf("id folder: %v", ext.Files)
	}
	ext = extract(t, s, config.Table{ID: "events", CSV: &config.CSVTable{Path: "drops/*-02.csv"}})
	if !reflect.DeepEqual(ext.Files, want[1:]) {
		t.Fatalf("glob: %v", ext.Files)
	}
	// Absolute path.
	ext = extract(t, s, config.Table{ID: "events", CSV: &config.CSVTable{Path: want[1]}})
	if !reflect.DeepEqual(ext.Files, want[1:]) {
		t.Fatalf("absolute: %v", ext.Files)
	}
	// A folder of .tsv files defaults to tabs.
	testenv.WriteFile(t, filepath.Join(home, "src/tabs/a.tsv"), "x\ty\n1\t2\n")
	ext = extract(t, s, config.Table{ID: "tabs"})
	if ext.Format.Delimiter != '\t' || !reflect.DeepEqual(names(ext.Columns), []string{"x:", "y:"}) {
		t.Fatalf("tsv: %+v", ext)
	}
}

func TestExtractDeclaredColumns(t *testing.T) {
	home := t.TempDir()
	s := open(t, home, "path: .")
	testenv.WriteFile(t, filepath.Join(home, "t.csv"), "id,Amount,note\n1,2.5,x\n")
	table := config.Table{ID: "t", Columns: []config.Column{
		{Name: "amount", Type: "DECIMAL(12,2)", Description: "money"},
		{Name: "id", Type: "INTEGER"},
	}}
	ext := extract(t, s, table)
	// File order, declared types, undeclared columns inferred.
	if got := names(ext.Columns); !reflect.DeepEqual(got, []string{"id:INTEGER", "Amount:DECIMAL(12,2)", "note:"}) {
		t.Fatalf("columns: %v", got)
	}
	if ext.Columns[1].Description != "money" {
		t.Fatalf("description lost: %+v", ext.Columns[1])
	}
	table.Columns = append(table.Columns, config.Column{Name: "missing", Type: "DATE"})
	_, err := s.Extract(context.Background(), connectors.ExtractRequest{Table: table})
	if err == nil || !strings.Contains(err.Error(), `"missing"`) || !strings.Contains(err.Error(), "t.csv") {
		t.Fatalf("missing declared column: %v", err)
	}
}

func TestExtractFormatOptions(t *testing.T) {
	home := t.TempDir()
	s := open(t, home, "path: .")
	no := false
	testenv.WriteFile(t, filepath.Join(home, "q.txt"), "'a\tb'\t'it''s'\tc\n'1\t2'\t3\t4\n")
	for _, delim := range []string{"\t", `\t`, "tab"} {
		ext := extract(t, s, config.Table{ID: "q", CSV: &config.CSVTable{Path: "q.txt", Delimiter: delim, Quote: "'"}})
		if got := names(ext.Columns); !reflect.DeepEqual(got, []string{"a\tb:", "it's:", "c:"}) || ext.Format.Delimiter != '\t' || ext.Format.Quote != '\'' {
			t.Fatalf("delimiter %q: %v %+v", delim, got, ext.Format)
		}
	}
	testenv.WriteFile(t, filepath.Join(home, "nohead.csv"), "1,2,3\n")
	ext := extract(t, s, config.Table{ID: "nohead", CSV: &config.CSVTable{Header: &no}})
	if got := names(ext.Columns); ext.Format.Header || !reflect.DeepEqual(got, []string{"column1:", "column2:", "column3:"}) {
		t.Fatalf("no header: %v", got)
	}
	testenv.WriteFile(t, filepath.Join(home, "latin.csv"), "caf\xe9,\x80uro\n1,2\n")
	ext = extract(t, s, config.Table{ID: "latin", CSV: &config.CSVTable{Encoding: "windows-1252"}})
	if got := names(ext.Columns); !reflect.DeepEqual(got, []string{"café:", "€uro:"}) || ext.Format.Encoding != "windows-1252" {
		t.Fatalf("windows-1252: %v", got)
	}
	_, err := s.Extract(context.Background(), connectors.ExtractRequest{Table: config.Table{ID: "latin"}})
	if err == nil || !strings.Contains(err.Error(), "encoding") || !strings.Contains(err.Error(), "latin.csv") {
		t.Fatalf("latin-1 read as utf-8: %v", err)
	}
	for _, bad := range []config.CSVTable{{Delimiter: ";;"}, {Quote: "ab"}, {Encoding: "ebcdic"}, {Delimiter: "'", Quote: "'"}} {
		bad := bad
		_, err := s.Extract(context.Background(), connectors.ExtractRequest{Table: config.Table{ID: "nohead", CSV: &bad}})
		if err == nil || !strings.Contains(err.Error(), "nohead") {
			t.Fatalf("bad option %+v: %v", bad, err)
		}
	}
}

func TestExtractErrors(t *testing.T) {
	home := t.TempDir()
	s := open(t, home, "path: src")
	ctx := context.Background()
	errOf := func(table config.Table) string {
		_, err := s.Extract(ctx, connectors.ExtractRequest{Table: table})
		if err == nil {
			t.Fatalf("table %s: no error", table.ID)
		}
		return err.Error()
	}
	if _, err := s.Extract(ctx, connectors.ExtractRequest{Table: config.Table{ID: "nothing"}}); !errors.Is(err, ErrNoFiles) {
		t.Fatalf("missing table: %v is not ErrNoFiles", err)
	}
	if e := errOf(config.Table{ID: "nothing"}); !strings.Contains(e, "no files matched") || !strings.Contains(e, filepath.Join(home, "src/nothing.csv")) {
		t.Fatalf("missing table: %s", e)
	}
	if e := errOf(config.Table{ID: "x", CSV: &config.CSVTable{Path: "drops/*.csv"}}); !strings.Contains(e, filepath.Join(home, "src/drops/*.csv")) {
		t.Fatalf("glob with no match: %s", e)
	}
	os.MkdirAll(filepath.Join(home, "src/empty"), 0o755)
	if e := errOf(config.Table{ID: "empty"}); !strings.Contains(e, "no files matched") {
		t.Fatalf("empty folder: %s", e)
	}
	testenv.WriteFile(t, filepath.Join(home, "src/mixed/a.csv"), "id,name\n")
	testenv.WriteFile(t, filepath.Join(home, "src/mixed/b.csv"), "id,title\n")
	if e := errOf(config.Table{ID: "mixed"}); !strings.Contains(e, "a.csv") || !strings.Contains(e, "b.csv") || !strings.Contains(e, `"title"`) {
		t.Fatalf("headers differ: %s", e)
	}
	testenv.WriteFile(t, filepath.Join(home, "src/broken.csv.gz"), "this is not gzip")
	if e := errOf(config.Table{ID: "broken"}); !strings.Contains(e, "broken.csv.gz") {
		t.Fatalf("unreadable file: %s", e)
	}
	testenv.WriteFile(t, filepath.Join(home, "src/zero.csv"), "")
	if e := errOf(config.Table{ID: "zero"}); !strings.Contains(e, "zero.csv is empty") {
		t.Fatalf("empty file: %s", e)
	}
	testenv.WriteFile(t, filepath.Join(home, "src/open.csv"), "\"id,name\n")
	if e := errOf(config.Table{ID: "open"}); !strings.Contains(e, "open.csv") || !strings.Contains(e, "not closed") {
		t.Fatalf("unclosed quote: %s", e)
	}
}

// Incremental tables over a folder of daily drops pick up only files changed since the last sync.
func TestExtractChangedSince(t *testing.T) {
	home := t.TempDir()
	s := open(t, home, "path: .")
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, day := range []string{"01", "02", "03"} {
		p := filepath.Join(home, "drops", "2025-03-"+day+".csv")
		testenv.WriteFile(t, p, "id\n"+day+"\n")
		mt := base.Add(time.Duration(i) * 24 * time.Hour)
		os.Chtimes(p, mt, mt)
	}
	table := config.Table{ID: "drops", SyncStrategy: config.Incremental}
	req := connectors.ExtractRequest{Table: table, ChangedSince: base.Add(12 * time.Hour)}
	ext, err := s.Extract(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(ext.Files) != 2 || !strings.HasSuffix(ext.Files[0], "2025-03-02.csv") || len(ext.Columns) != 1 {
		t.Fatalf("changed since: %+v", ext)
	}
	req.ChangedUntil = base.Add(36 * time.Hour)
	if ext, _ = s.Extract(context.Background(), req); len(ext.Files) != 1 || !strings.HasSuffix(ext.Files[0], "2025-03-02.csv") {
		t.Fatalf("window: %v", ext.Files)
	}
	req = connectors.ExtractRequest{Table: table, ChangedSince: base.Add(72 * time.Hour)}
	ext, err = s.Extract(context.Background(), req)
	if err != nil || len(ext.Files) != 0 {
		t.Fatalf("nothing new: %+v %v", ext, err)
	}
}

// DuckDB reads the files with the format and columns the extraction describes.
func TestExtractionReadableByDuckDB(t *testing.T) {
	home := t.TempDir()
	s := open(t, home, "path: .")
	testenv.WriteFile(t, filepath.Join(home, "p/a.csv"), "id|label|price\n1|'x|y'|2.50\n2|'it''s'|3.00\n")
	testenv.WriteFile(t, filepath.Join(home, "p/b.csv"), "id|label|price\n3|z|4.25\n")
	ext := extract(t, s, config.Table{ID: "p", CSV: &config.CSVTable{Delimiter: "|", Quote: "'"},
		Columns: []config.Column{{Name: "price", Type: "DECIMAL(10,2)"}}})
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `SELECT count(*), sum(price::DECIMAL(10,2))::VARCHAR, max(label) FROM read_csv(?, delim=?, quote=?, escape=?, header=?, all_varchar=true)`
	var n int
	var sum, maxLabel string
	err = db.QueryRow(q, ext.Files, string(ext.Format.Delimiter), string(ext.Format.Quote), string(ext.Format.Quote), ext.Format.Header).Scan(&n, &sum, &maxLabel)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || sum != "9.75" || maxLabel != "z" {
		t.Fatalf("duckdb read: n=%d sum=%s max=%s", n, sum, maxLabel)
	}
	rows, err := db.Query(`DESCRIBE SELECT * FROM read_csv(?, delim=?, quote=?, header=true)`, ext.Files, "|", "'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var name, typ string
		var a, b, c, d any
		rows.Scan(&name, &typ, &a, &b, &c, &d)
		got = append(got, name)
	}
	var want []string
	for _, c := range ext.Columns {
		want = append(want, c.Name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("duckdb columns %v, extraction columns %v", got, want)
	}
}
