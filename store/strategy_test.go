package store

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stage converts CSV text (with a header) into a Parquet file, the way a sync stages an extract.
func stage(t *testing.T, dir, name, csv string, cols ...Column) string {
	t.Helper()
	in := writeFile(t, dir, name+".csv", []byte(csv))
	out := filepath.Join(dir, name+".parquet")
	if _, err := ConvertCSV(context.Background(), []string{in}, ConvertOptions{Format: header, Columns: cols, Metadata: map[string]string{"table_id": "in.c-test." + name}}, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func engineForTest(t *testing.T) *sql.DB {
	t.Helper()
	db, err := OpenEngine(t.TempDir(), "256MB")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenEngineSettings(t *testing.T) {
	tmp := t.TempDir()
	db, err := OpenEngine(tmp, "256MB")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := rows(t, db, "SELECT current_setting('memory_limit'), current_setting('TimeZone'), current_setting('temp_directory')")
	if len(got) != 1 || !strings.HasPrefix(got[0], "244.1 MiB|") && !strings.HasPrefix(got[0], "256") || !strings.HasSuffix(got[0], "|UTC|"+tmp) {
		t.Errorf("settings %v", got)
	}
}

func TestApplyFullRefreshReplacesTarget(t *testing.T) {
	dir := t.TempDir()
	target := stage(t, dir, "orders", "id,v\n1,a\n2,b\n")
	staged := stage(t, t.TempDir(), "staged", "id,v\n3,c\n")
	if err := os.MkdirAll(filepath.Join(dir, "staging"), 0o755); err != nil {
		t.Fatal(err)
	}
	same := filepath.Join(dir, "staging", "orders.parquet")
	if err := os.Rename(staged, same); err != nil {
		t.Fatal(err)
	}
	if err := ApplyFullRefresh(same, target); err != nil {
		t.Fatal(err)
	}
	equalRows(t, rows(t, duck(t), "SELECT id, v FROM read_parquet(?)", target), []string{"3|c"})
}

func TestUpsertFile(t *testing.T) {
	dir := t.TempDir()
	db := engineForTest(t)
	cols := []Column{{Name: "id", Type: "INTEGER"}, {Name: "amount", Type: "DECIMAL(10,2)"}}
	target := filepath.Join(dir, "orders.parquet")
	first := stage(t, dir, "first", "id,name,amount\n1,one,1.10\n2,two,2.20\n3,three,3.30\n", cols...)
	st, err := UpsertFile(context.Background(), db, first, target, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 3 || st.Rows != 3 {
		t.Errorf("first load stats %+v", st)
	}
	// The second extract changes row 2, adds row 4, repeats row 4 (the later copy wins) and
	// brings a new column.
	second := stage(t, dir, "second", "id,name,amount,note\n2,TWO,22.00,changed\n4,four,4.40,new\n4,FOUR,44.40,newer\n", cols...)
	st, err = UpsertFile(context.Background(), db, second, target, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 1 || st.Updated != 1 || st.Unchanged != 2 || st.Rows != 4 {
		t.Errorf("stats %+v", st)
	}
	r := duck(t)
	equalRows(t, rows(t, r, "SELECT id, name, amount::VARCHAR, note FROM read_parquet(?) ORDER BY id", target), []string{
		"1|one|1.10|NULL", "2|TWO|22.00|changed", "3|three|3.30|NULL", "4|FOUR|44.40|newer",
	})
	if got := describeTypes(t, r, target); got["amount"] != "DECIMAL(10,2)" || got["id"] != "BIGINT" {
		t.Errorf("merged types %v", got)
	}
	equalRows(t, rows(t, r, "SELECT decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) = 'table_id'", target), []string{"in.c-test.second"})
}

func TestUpsertFileWithNothingStagedKeepsTarget(t *testing.T) {
	dir := t.TempDir()
	db := engineForTest(t)
	target := stage(t, dir, "t", "id,v\n1,a\n2,b\n")
	before, _ := os.Stat(target)
	st, err := UpsertFile(context.Background(), db, stage(t, dir, "s", "id,v\n"), target, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 0 || st.Updated != 0 || st.Unchanged != 2 || st.Rows != 2 {
		t.Errorf("stats %+v", st)
	}
	if after, _ := os.Stat(target); !os.SameFile(before, after) {
		t.Error("the target was rewritten for an empty extract")
	}
}

func TestUpsertFileCompositeKey(t *testing.T) {
	dir := t.TempDir()
	db := engineForTest(t)
	target := stage(t, dir, "lines", "order_id,line,qty\n1,1,5\n1,2,6\n2,1,7\n")
	staged := stage(t, dir, "staged", "order_id,line,qty\n1,2,60\n2,2,8\n")
	st, err := UpsertFile(context.Background(), db, staged, target, []string{"order_id", "line"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 1 || st.Updated != 1 || st.Unchanged != 2 || st.Rows != 4 {
		t.Errorf("stats %+v", st)
	}
	equalRows(t, rows(t, duck(t), "SELECT order_id, line, qty FROM read_parquet(?) ORDER BY ALL", target), []string{
		"1|1|5", "1|2|60", "2|1|7", "2|2|8",
	})
}

func TestUpsertFileMissingKeyColumns(t *testing.T) {
	dir := t.TempDir()
	db := engineForTest(t)
	target := stage(t, dir, "t", "id,v\n1,a\n")
	staged := stage(t, dir, "s", "key,v\n1,b\n")
	_, err := UpsertFile(context.Background(), db, staged, target, []string{"id", "region"})
	if err == nil || !strings.Contains(err.Error(), "id, region") || !strings.Contains(err.Error(), staged) {
		t.Errorf("error %v, want it to name the file and the missing key columns", err)
	}
	staged2 := stage(t, dir, "s2", "id,region,v\n1,eu,b\n")
	_, err = UpsertFile(context.Background(), db, staged2, target, []string{"id", "region"})
	if err == nil || !strings.Contains(err.Error(), "region") || !strings.Contains(err.Error(), target) {
		t.Errorf("error %v, want it to name the target and its missing key column", err)
	}
}

func TestUpsertFileFailureKeepsTarget(t *testing.T) {
	dir := t.TempDir()
	db := engineForTest(t)
	target := stage(t, dir, "t", "id,v\n1,a\n2,b\n", Column{Name: "id", Type: "INTEGER"})
	before, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	// The key is text here and cannot be compared with the integer key: the merge fails while
	// it runs, after it has started writing.
	staged := stage(t, dir, "s", "id,v\nnot-a-number,c\n", Column{Name: "id", Type: "STRING"})
	if _, err := UpsertFile(context.Background(), db, staged, target, []string{"id"}); err == nil {
		t.Fatal("want an error")
	}
	after, _ := os.ReadFile(target)
	if !bytes.Equal(before, after) {
		t.Error("the target changed after a failed merge")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".t.parquet.tmp-*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	equalRows(t, rows(t, duck(t), "SELECT count(*) FROM read_parquet(?)", target), []string{"2"})
}

func partitionKeys(t *testing.T, dir string) []string {
	t.Helper()
	parts, err := partitionFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range parts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestUpsertPartitions(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "orders")
	db := engineForTest(t)
	ctx := context.Background()
	p := Partitioning{Column: "ordered_at", Granularity: "month"}
	cols := []Column{{Name: "ordered_at", Type: "TIMESTAMP_TZ"}}
	pk := []string{"id"}

	first := stage(t, tmp, "first", "id,ordered_at,v\n"+
		"1,2024-01-10 10:00:00Z,a\n"+
		"2,2024-01-31 23:30:00-02:00,b\n"+ // 2024-02-01 01:30 UTC
		"3,2024-02-15 00:00:00Z,c\n"+
		"4,,d\n"+ // no partition value: kept in __null__
		"9,2024-04-01 00:00:00Z,z\n", cols...)
	st, err := UpsertPartitions(ctx, db, first, dir, p, pk, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := partitionKeys(t, dir); !slices.Equal(got, []string{"2024_01", "2024_02", "2024_04", NullPartition}) {
		t.Fatalf("partitions %v", got)
	}
	if st.Added != 5 || st.Rows != 5 {
		t.Errorf("first stats %+v", st)
	}
	r := duck(t)
	all := func() []string {
		return rows(t, r, "SELECT parse_filename(filename, true), id, v FROM read_parquet(? || '/*.parquet', filename=true, union_by_name=true) ORDER BY id", dir)
	}
	equalRows(t, all(), []string{"2024_01|1|a", "2024_02|2|b", "2024_02|3|c", NullPartition + "|4|d", "2024_04|9|z"})
	untouched, _ := os.Stat(filepath.Join(dir, "2024_04.parquet"))

	// Row 1 moves to March, row 4 gets a date, row 5 is new in the null partition; 2024_04 is
	// not touched and must not be rewritten.
	second := stage(t, tmp, "second", "id,ordered_at,v\n1,2024-03-01 00:00:00Z,a2\n4,2024-02-02 00:00:00Z,d2\n5,,e\n", cols...)
	st, err = UpsertPartitions(ctx, db, second, dir, p, pk, false)
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, all(), []string{"2024_03|1|a2", "2024_02|2|b", "2024_02|3|c", "2024_02|4|d2", NullPartition + "|5|e", "2024_04|9|z"})
	if got := partitionKeys(t, dir); !slices.Equal(got, []string{"2024_02", "2024_03", "2024_04", NullPartition}) {
		t.Errorf("partitions after the move %v (2024_01 became empty and must go)", got)
	}
	if st.Added != 1 || st.Updated != 2 || st.Unchanged != 3 || st.Rows != 6 {
		t.Errorf("second stats %+v", st)
	}
	if !slices.Equal(st.PartitionsRemoved, []string{"2024_01"}) || slices.Contains(st.PartitionsWritten, "2024_04") {
		t.Errorf("written %v removed %v", st.PartitionsWritten, st.PartitionsRemoved)
	}
	if now, _ := os.Stat(filepath.Join(dir, "2024_04.parquet")); !os.SameFile(untouched, now) || !now.ModTime().Equal(untouched.ModTime()) {
		t.Error("an untouched partition was rewritten")
	}

	// A full refresh is the whole source: rows and partitions it lacks are removed.
	full := stage(t, tmp, "full", "id,ordered_at,v\n2,2024-02-01 01:30:00Z,b3\n5,,e\n6,2025-01-01 00:00:00Z,f\n", cols...)
	st, err = UpsertPartitions(ctx, db, full, dir, p, pk, true)
	if err != nil {
		t.Fatal(err)
	}
	equalRows(t, all(), []string{"2024_02|2|b3", NullPartition + "|5|e", "2025_01|6|f"})
	if got := partitionKeys(t, dir); !slices.Equal(got, []string{"2024_02", "2025_01", NullPartition}) {
		t.Errorf("partitions after full refresh %v", got)
	}
	if st.Deleted != 4 || st.Rows != 3 || st.Added != 1 || st.Updated != 2 {
		t.Errorf("full refresh stats %+v", st)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	ts, err := TableStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Rows != 3 || ts.Columns != 3 || ts.Files != 3 || ts.Bytes == 0 || ts.UncompressedBytes == 0 {
		t.Errorf("table stats %+v", ts)
	}
}

func TestUpsertPartitionsGranularities(t *testing.T) {
	tmp := t.TempDir()
	db := engineForTest(t)
	csv := "id,day\n1,2024-03-05\n2,2023-12-31\n3,not a date\n"
	for gran, want := range map[string][]string{
		"day":  {"2023_12_31", "2024_03_05", NullPartition},
		"year": {"2023", "2024", NullPartition},
	} {
		// A string column is parsed; a value that is no date lands in the null partition.
		staged := stage(t, tmp, "s"+gran, csv, Column{Name: "day", Type: "STRING"})
		dir := filepath.Join(tmp, gran)
		if _, err := UpsertPartitions(context.Background(), db, staged, dir, Partitioning{Column: "day", Granularity: gran}, []string{"id"}, false); err != nil {
			t.Fatal(err)
		}
		if got := partitionKeys(t, dir); !slices.Equal(got, want) {
			t.Errorf("%s partitions %v, want %v", gran, got, want)
		}
	}
	staged := stage(t, tmp, "x", csv)
	if _, err := UpsertPartitions(context.Background(), db, staged, filepath.Join(tmp, "x"), Partitioning{Column: "missing"}, []string{"id"}, false); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing partition column: %v", err)
	}
	if _, err := UpsertPartitions(context.Background(), db, staged, filepath.Join(tmp, "x"), Partitioning{Column: "day", Granularity: "week"}, []string{"id"}, false); err == nil {
		t.Error("unknown granularity accepted")
	}
}

func TestTableStatsFile(t *testing.T) {
	dir := t.TempDir()
	f := stage(t, dir, "t", "a,b,c\n1,x,2024-01-01\n2,y,2024-01-02\n")
	st, err := TableStats(f)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(f)
	if st.Rows != 2 || st.Columns != 3 || st.Bytes != fi.Size() || st.Files != 1 || st.UncompressedBytes <= 0 {
		t.Errorf("stats %+v", st)
	}
	if _, err := TableStats(filepath.Join(dir, "nope.parquet")); !os.IsNotExist(err) {
		t.Errorf("missing table: %v", err)
	}
}
