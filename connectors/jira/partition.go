package jira

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/ai-data-analyst/analyst/store"
)

var monthPattern = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])$`)

// ValidMonth reports whether s is a partition name, YYYY-MM.
func ValidMonth(s string) bool { return monthPattern.MatchString(s) }

// PartitionPath is the file of one table's month.
func PartitionPath(dir, table, month string) string {
	return filepath.Join(dir, table, month+".parquet")
}

// TableStats describe one table's month file after a write.
type TableStats struct {
	Table   string
	Rows    int64 // rows in the month file now (0: the file was removed)
	Bytes   int64
	Changed bool // the file was replaced or removed
}

// WritePartition rewrites the month file of each table under dir: rows of the issue keys in
// replace are dropped, then rows[table] are appended. Each file is replaced atomically (a
// reader sees the old or the new file, never a partial one); a file left without rows is
// removed. An existing file that cannot be read is an error, never treated as empty.
// The caller makes sure only one writer works on a month at a time.
func WritePartition(ctx context.Context, dir string, tables []Table, month string, replace map[string]bool, rows Rows) ([]TableStats, error) {
	if !ValidMonth(month) {
		return nil, fmt.Errorf("jira: bad partition %q (want YYYY-MM)", month)
	}
	stats := make([]TableStats, len(tables))
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		wg.Go(func() {
			stats[i], errs[i] = writeTable(ctx, dir, t, month, replace, rows[t.Name])
		})
	}
	wg.Wait()
	return stats, errors.Join(errs...)
}

// dictionaryColumns repeat few values; dictionary encoding makes them small. Other strings
// (keys, texts, URLs) are written plain: hashing every value costs more than it saves.
var dictionaryColumns = []string{"issue_type", "status", "status_category", "priority", "resolution",
	"project_key", "project_name", "creator_email", "creator_name", "reporter_email", "reporter_name",
	"assignee_email", "assignee_name", "request_type", "request_status", "severity", "spam",
	"technical_issue_category", "l3_team", "author_email", "author_name", "update_author_email",
	"field_name", "field_type", "mime_type", "link_type", "direction", "application_name", "application_type"}

var writerProps = func() *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(128 * 1024),
		parquet.WithCreatedBy("ai-data-analyst jira"),
		parquet.WithDictionaryDefault(false),
	}
	for _, c := range dictionaryColumns {
		opts = append(opts, parquet.WithDictionaryFor(c, true))
	}
	return parquet.NewWriterProperties(opts...)
}()

func writeTable(ctx context.Context, dir string, t Table, month string, replace map[string]bool, add []Row) (TableStats, error) {
	st := TableStats{Table: t.Name}
	path := PartitionPath(dir, t.Name, month)
	old, err := file.OpenParquetFile(path, false)
	if errors.Is(err, os.ErrNotExist) {
		old = nil
		if len(add) == 0 {
			return st, nil // nothing there, nothing to add
		}
	} else if err != nil {
		return st, fmt.Errorf("jira: read %s: %w", path, err)
	}
	if old != nil {
		defer old.Close()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return st, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+month+".parquet.tmp-*")
	if err != nil {
		return st, err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	schema := t.Schema()
	fw, err := pqarrow.NewFileWriter(schema, tmp, writerProps, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		tmp.Close()
		return st, err
	}
	removed := false
	if old != nil {
		kept, dropped, err := copyKept(ctx, old, schema, replace, fw)
		if err != nil {
			fw.Close()
			return st, fmt.Errorf("jira: read %s: %w", path, err)
		}
		st.Rows, removed = kept, dropped
	}
	if len(add) > 0 {
		rec, err := buildRecord(schema, add)
		if err != nil {
			fw.Close()
			return st, fmt.Errorf("jira: %s rows: %w", t.Name, err)
		}
		err = fw.WriteBuffered(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return st, err
		}
		st.Rows += int64(len(add))
	}
	if err := fw.Close(); err != nil { // also closes tmp
		return st, fmt.Errorf("jira: write %s: %w", path, err)
	}
	if old != nil && !removed && len(add) == 0 {
		return st, nil // untouched: keep the file as it is
	}
	st.Changed = true
	if st.Rows == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return st, err
		}
		return st, store.SyncDir(filepath.Dir(path))
	}
	if err := store.PublishFile(tmp.Name(), path); err != nil {
		return st, err
	}
	if fi, err := os.Stat(path); err == nil {
		st.Bytes = fi.Size()
	}
	return st, nil
}

// copyKept streams the old file's rows into fw, without the rows of the replaced issues.
func copyKept(ctx context.Context, old *file.Reader, schema *arrow.Schema, replace map[string]bool, fw *pqarrow.FileWriter) (kept int64, dropped bool, err error) {
	fr, err := pqarrow.NewFileReader(old, pqarrow.ArrowReadProperties{Parallel: true, BatchSize: 64 * 1024}, memory.DefaultAllocator)
	if err != nil {
		return 0, false, err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return 0, false, err
	}
	defer rr.Release()
	for rr.Next() {
		batch, err := conform(rr.RecordBatch(), schema)
		if err != nil {
			return 0, false, err
		}
		out, n, err := dropKeys(ctx, batch, replace)
		batch.Release()
		if err != nil {
			return 0, false, err
		}
		if out.NumRows() < n {
			dropped = true
		}
		kept += out.NumRows()
		if out.NumRows() > 0 {
			err = fw.WriteBuffered(out)
		}
		out.Release()
		if err != nil {
			return 0, false, err
		}
	}
	return kept, dropped, rr.Err()
}

// dropKeys filters out the rows whose issue_key is in replace; n is the batch's row count.
func dropKeys(ctx context.Context, rec arrow.RecordBatch, replace map[string]bool) (arrow.RecordBatch, int64, error) {
	n := rec.NumRows()
	idx := rec.Schema().FieldIndices("issue_key")
	if len(idx) == 0 || len(replace) == 0 {
		rec.Retain()
		return rec, n, nil
	}
	keys, ok := rec.Column(idx[0]).(*array.String)
	if !ok {
		return nil, n, fmt.Errorf("column issue_key is %s, want string", rec.Column(idx[0]).DataType())
	}
	mask := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer mask.Release()
	mask.Reserve(int(n))
	drop := 0
	for i := range int(n) {
		keep := keys.IsNull(i) || !replace[keys.Value(i)]
		if !keep {
			drop++
		}
		mask.UnsafeAppend(keep)
	}
	if drop == 0 {
		rec.Retain()
		return rec, n, nil
	}
	m := mask.NewArray()
	defer m.Release()
	out, err := compute.FilterRecordBatch(ctx, rec, m, compute.DefaultFilterOptions())
	return out, n, err
}

// conform gives an old file's batch the current schema: columns matched by name, a column the
// old file lacks (a custom field configured later) is null, one it has extra is dropped.
func conform(rec arrow.RecordBatch, schema *arrow.Schema) (arrow.RecordBatch, error) {
	if rec.Schema().Equal(schema) {
		rec.Retain()
		return rec, nil
	}
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range schema.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, int(rec.NumRows()))
			continue
		}
		c := rec.Column(idx[0])
		if !arrow.TypeEqual(c.DataType(), f.Type) {
			return nil, fmt.Errorf("column %s is %s, want %s", f.Name, c.DataType(), f.Type)
		}
		c.Retain()
		cols[i] = c
	}
	return array.NewRecordBatch(schema, cols, rec.NumRows()), nil
}

// buildRecord turns rows into one Arrow batch of schema.
func buildRecord(schema *arrow.Schema, rows []Row) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for r, row := range rows {
		if len(row) != schema.NumFields() {
			return nil, fmt.Errorf("row %d has %d values, want %d", r, len(row), schema.NumFields())
		}
		for i, v := range row {
			fb := b.Field(i)
			if v == nil {
				fb.AppendNull()
				continue
			}
			col := schema.Field(i).Name
			switch fb := fb.(type) {
			case *array.StringBuilder:
				s, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("row %d column %s: %T, want string", r, col, v)
				}
				fb.Append(strings.ToValidUTF8(s, "\uFFFD"))
			case *array.Int64Builder:
				n, ok := v.(int64)
				if !ok {
					return nil, fmt.Errorf("row %d column %s: %T, want int64", r, col, v)
				}
				fb.Append(n)
			case *array.TimestampBuilder:
				at, ok := v.(time.Time)
				if !ok {
					return nil, fmt.Errorf("row %d column %s: %T, want time", r, col, v)
				}
				fb.Append(arrow.Timestamp(at.UnixMicro()))
			default:
				return nil, fmt.Errorf("column %s: unsupported builder %T", col, fb)
			}
		}
	}
	return b.NewRecordBatch(), nil
}
