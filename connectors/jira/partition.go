package jira

import (
	"cmp"
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
	"github.com/apache/arrow-go/v18/parquet/metadata"
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
	// Of the new file's row groups, how many were copied from the old file as they were and
	// how many were encoded.
	GroupsCopied, GroupsEncoded int
}

// WritePartition rewrites the month file of each table under dir: rows of the issue keys in
// replace are dropped, then rows[table] are appended. Each file is replaced atomically (a
// reader sees the old or the new file, never a partial one); a file left without rows is
// removed. An existing file that cannot be read is an error, never treated as empty.
// The caller makes sure only one writer works on a month at a time.
func WritePartition(ctx context.Context, dir string, tables []Table, month string, replace map[string]bool, rows Rows) ([]TableStats, error) {
	return (&PartitionWriter{Dir: dir}).Write(ctx, tables, month, replace, rows)
}

// PartitionWriter is WritePartition for a server, which rewrites the same months again and
// again: it keeps the files it wrote last decoded in memory, up to CacheBytes, so that the next
// rewrite of a hot month copies the row groups the change leaves alone (see splice) and
// encodes only the rest, without decoding anything. A cached copy is used only while the file
// on disk is the one it was written as.
type PartitionWriter struct {
	Dir          string
	CacheBytes   int64 // 0: no cache
	RowGroupRows int64 // rows per row group; 0: rowGroupRows

	mu    sync.Mutex
	cache map[string]*cachedFile // by path
	tick  int64
}

// cachedFile is a month file as written: the file, its footer and the rows of each of its row
// groups (groups[i] holds row group i).
type cachedFile struct {
	file   os.FileInfo
	meta   *metadata.FileMetaData
	groups []arrow.RecordBatch
	bytes  int64
	used   int64 // tick of the last use, for eviction
}

func (w *PartitionWriter) props() *parquet.WriterProperties {
	return writerProps(cmp.Or(w.RowGroupRows, rowGroupRows))
}

// Write is WritePartition with the writer's cache.
func (w *PartitionWriter) Write(ctx context.Context, tables []Table, month string, replace map[string]bool, rows Rows) ([]TableStats, error) {
	if !ValidMonth(month) {
		return nil, fmt.Errorf("jira: bad partition %q (want YYYY-MM)", month)
	}
	stats := make([]TableStats, len(tables))
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		wg.Go(func() {
			stats[i], errs[i] = w.writeTable(ctx, t, month, replace, rows[t.Name])
		})
	}
	wg.Wait()
	return stats, errors.Join(errs...)
}

// take removes and returns the cached rows of path when the file there is still the one they
// were written as.
func (w *PartitionWriter) take(path string) *cachedFile {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.cache[path]
	delete(w.cache, path)
	if c == nil {
		return nil
	}
	if fi, err := os.Stat(path); err != nil || !os.SameFile(fi, c.file) || !fi.ModTime().Equal(c.file.ModTime()) || fi.Size() != c.file.Size() {
		release(c.groups)
		return nil
	}
	return c
}

// keep caches the file just written to path (its footer meta and its rows in batches, in file
// order), evicting the least recently used files beyond the budget; it takes over the batches.
func (w *PartitionWriter) keep(path string, meta *metadata.FileMetaData, batches []arrow.RecordBatch) {
	fi, err := os.Stat(path)
	if err != nil || w.CacheBytes <= 0 {
		release(batches)
		return
	}
	groups, err := alignGroups(batches, meta)
	if err != nil {
		return
	}
	var size int64
	for _, b := range groups {
		for _, c := range b.Columns() {
			size += dataSize(c.Data())
		}
	}
	if size > w.CacheBytes {
		release(groups)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cache == nil {
		w.cache = map[string]*cachedFile{}
	}
	w.tick++
	w.cache[path] = &cachedFile{file: fi, meta: meta, groups: groups, bytes: size, used: w.tick}
	for {
		var total int64
		var oldest string
		for p, c := range w.cache {
			total += c.bytes
			if oldest == "" || c.used < w.cache[oldest].used {
				oldest = p
			}
		}
		if total <= w.CacheBytes {
			return
		}
		release(w.cache[oldest].groups)
		delete(w.cache, oldest)
	}
}

// dataSize is the memory an array's buffers take.
func dataSize(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataSize(c)
	}
	return n
}

func release(batches []arrow.RecordBatch) {
	for _, b := range batches {
		b.Release()
	}
}

// dictionaryColumns repeat few values; dictionary encoding makes them small. Other strings
// (keys, texts, URLs) are written plain: hashing every value costs more than it saves.
var dictionaryColumns = []string{"issue_type", "status", "status_category", "priority", "resolution",
	"project_key", "project_name", "creator_email", "creator_name", "reporter_email", "reporter_name",
	"assignee_email", "assignee_name", "request_type", "request_status", "severity", "spam",
	"technical_issue_category", "l3_team",
	"field_name", "field_type", "mime_type", "link_type", "direction", "application_name", "application_type"}

// textColumns hold free text and URLs: their min/max statistics help no query and cost a
// comparison per value on every rewrite.
var textColumns = []string{"summary", "description", "body", "from_value", "to_value", "context", "labels",
	"participants", "organizations", "linked_issue_summary", "title", "url", "issue_url", "custom_url",
	"slack_link", "content_url", "thumbnail_url", "local_path", "hierarchical_path", "_raw_file", "filename"}

// writerProps are the Parquet settings of a month file with row groups of groupRows rows.
func writerProps(groupRows int64) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(groupRows),
		parquet.WithCreatedBy("ai-data-analyst jira"),
		parquet.WithDictionaryDefault(false),
	}
	for _, c := range dictionaryColumns {
		opts = append(opts, parquet.WithDictionaryFor(c, true))
	}
	for _, c := range textColumns {
		opts = append(opts, parquet.WithStatsFor(c, false))
	}
	return parquet.NewWriterProperties(opts...)
}

func (w *PartitionWriter) writeTable(ctx context.Context, t Table, month string, replace map[string]bool, add []Row) (TableStats, error) {
	st := TableStats{Table: t.Name}
	path := PartitionPath(w.Dir, t.Name, month)
	schema := t.Schema()
	var source batchSource
	var oldMeta *metadata.FileMetaData
	c := w.take(path)
	if c == nil {
		c = w.load(ctx, path, schema)
	}
	if c != nil {
		if sameRows(c.groups, replace, add) {
			// An issue change that leaves this table's rows as they are (a comment leaves the
			// changelog, a field edit the comments) does not rewrite it.
			st.Rows = c.meta.NumRows
			w.keep(path, c.meta, c.groups)
			return st, nil
		}
		if spliced, ok, err := w.splice(ctx, path, month, schema, c, replace, add); ok || err != nil {
			spliced.Table = t.Name
			return spliced, err
		}
		source, oldMeta = cachedSource(c.groups), c.meta
	} else {
		old, err := file.OpenParquetFile(path, false)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if len(add) == 0 {
				return st, nil // nothing there, nothing to add
			}
		case err != nil:
			return st, fmt.Errorf("jira: read %s: %w", path, err)
		default:
			defer old.Close()
			source, oldMeta = fileSource(old, schema), old.MetaData()
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return st, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+month+".parquet.tmp-*")
	if err != nil {
		return st, err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	fw, err := pqarrow.NewFileWriter(schema, tmp, w.props(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		tmp.Close()
		return st, err
	}
	var written []arrow.RecordBatch // what the new file holds, for the cache
	fail := func(err error) (TableStats, error) {
		fw.Close()
		release(written)
		return st, err
	}
	removed := false
	if source != nil {
		err := source(ctx, func(batch arrow.RecordBatch) error {
			out, n, err := dropKeys(ctx, batch, replace)
			if err != nil {
				return err
			}
			if out.NumRows() < n {
				removed = true
			}
			st.Rows += out.NumRows()
			if out.NumRows() == 0 {
				out.Release()
				return nil
			}
			written = append(written, out)
			return fw.WriteBuffered(out)
		})
		if err != nil {
			return fail(fmt.Errorf("jira: read %s: %w", path, err))
		}
	}
	if len(add) > 0 {
		rec, err := buildRecord(schema, add)
		if err != nil {
			return fail(fmt.Errorf("jira: %s rows: %w", t.Name, err))
		}
		written = append(written, rec)
		if err := fw.WriteBuffered(rec); err != nil {
			return fail(err)
		}
		st.Rows += int64(len(add))
	}
	if err := fw.Close(); err != nil { // also closes tmp
		release(written)
		return st, fmt.Errorf("jira: write %s: %w", path, err)
	}
	if source != nil && !removed && len(add) == 0 {
		w.keep(path, oldMeta, written) // untouched: keep the file as it is
		return st, nil
	}
	st.Changed = true
	if st.Rows == 0 {
		release(written)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return st, err
		}
		return st, store.SyncDir(filepath.Dir(path))
	}
	if err := store.PublishFile(tmp.Name(), path); err != nil {
		release(written)
		return st, err
	}
	if fi, err := os.Stat(path); err == nil {
		st.Bytes = fi.Size()
	}
	meta, err := fw.FileMetadata() // the footer it wrote
	if err != nil {
		release(written)
		return st, nil // written and published; only not cached
	}
	st.GroupsEncoded = meta.NumRowGroups()
	w.keep(path, meta, written)
	return st, nil
}

// sameRows reports whether batches already hold exactly add for the issues in replace, in
// the same order: replacing them would write the same file again.
func sameRows(batches []arrow.RecordBatch, replace map[string]bool, add []Row) bool {
	if len(batches) == 0 {
		return false
	}
	idx := batches[0].Schema().FieldIndices("issue_key")
	if len(idx) == 0 {
		return false
	}
	col := idx[0]
	want := map[string][]Row{}
	for _, r := range add {
		k, _ := r[col].(string)
		if !replace[k] {
			return false // a row of an issue not being replaced: an addition
		}
		want[k] = append(want[k], r)
	}
	seen := map[string]int{}
	for _, b := range batches {
		keys, ok := b.Column(col).(*array.String)
		if !ok {
			return false
		}
		for i := range keys.Len() {
			if keys.IsNull(i) || !replace[keys.Value(i)] {
				continue
			}
			k := keys.Value(i)
			n := seen[k]
			if n >= len(want[k]) || !rowEqual(b, i, want[k][n]) {
				return false
			}
			seen[k] = n + 1
		}
	}
	for k, rows := range want {
		if seen[k] != len(rows) {
			return false
		}
	}
	return true
}

// rowEqual compares row i of b with r as buildRecord would store it.
func rowEqual(b arrow.RecordBatch, i int, r Row) bool {
	if len(r) != int(b.NumCols()) {
		return false
	}
	for c, v := range r {
		arr := b.Column(c)
		if v == nil || arr.IsNull(i) {
			if v != nil || !arr.IsNull(i) {
				return false
			}
			continue
		}
		switch arr := arr.(type) {
		case *array.String:
			s, ok := v.(string)
			if !ok || arr.Value(i) != strings.ToValidUTF8(s, "\uFFFD") {
				return false
			}
		case *array.Int64:
			n, ok := v.(int64)
			if !ok || arr.Value(i) != n {
				return false
			}
		case *array.Timestamp:
			t, ok := v.(time.Time)
			if !ok || arr.Value(i) != arrow.Timestamp(t.UnixMicro()) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// batchSource calls fn with each batch of a month's current rows, in the table's schema; fn
// owns the batch.
type batchSource func(ctx context.Context, fn func(arrow.RecordBatch) error) error

func cachedSource(batches []arrow.RecordBatch) batchSource {
	return func(ctx context.Context, fn func(arrow.RecordBatch) error) error {
		for i, b := range batches {
			if err := fn(b); err != nil {
				release(batches[i+1:])
				return err
			}
		}
		return nil
	}
}

// fileSource streams a month file's rows.
func fileSource(old *file.Reader, schema *arrow.Schema) batchSource {
	return func(ctx context.Context, fn func(arrow.RecordBatch) error) error {
		fr, err := pqarrow.NewFileReader(old, pqarrow.ArrowReadProperties{Parallel: true, BatchSize: 64 * 1024}, memory.DefaultAllocator)
		if err != nil {
			return err
		}
		rr, err := fr.GetRecordReader(ctx, nil, nil)
		if err != nil {
			return err
		}
		defer rr.Release()
		for rr.Next() {
			batch, err := conform(rr.RecordBatch(), schema)
			if err != nil {
				return err
			}
			if err := fn(batch); err != nil {
				return err
			}
		}
		return rr.Err()
	}
}

// dropKeys filters out the rows whose issue_key is in replace; n is the batch's row count. It
// takes over rec.
func dropKeys(ctx context.Context, rec arrow.RecordBatch, replace map[string]bool) (arrow.RecordBatch, int64, error) {
	n := rec.NumRows()
	idx := rec.Schema().FieldIndices("issue_key")
	if len(idx) == 0 || len(replace) == 0 {
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
		return rec, n, nil
	}
	defer rec.Release()
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
