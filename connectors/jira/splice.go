package jira

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/ai-data-analyst/analyst/store"
)

// rowGroupRows is the size of a month file's row groups. A rewrite copies the row groups that
// hold none of the changed issues byte for byte and encodes only the others, so smaller groups
// mean less to encode: the rows of changed issues move to the file's tail, and since the
// issues that change are mostly the same recent ones, the head of a month settles into groups
// that are never encoded again.
const rowGroupRows = 8 * 1024

// splice rewrites a cached month file by copying its untouched row groups as they are and
// encoding only the rows of the touched ones (without the replaced issues) and the new rows.
// ok is false, with nothing done, when no row group can be kept: the caller rewrites it all.
func (w *PartitionWriter) splice(ctx context.Context, path, month string, schema *arrow.Schema, c *cachedFile, replace map[string]bool, add []Row) (st TableStats, ok bool, err error) {
	if !spliceable(c.meta) {
		return st, false, nil
	}
	// A group is kept when none of its issues change and it is not small: the rows of a small
	// one (the tail of the last rewrite) are encoded again with the new ones, so that a month
	// does not end up in many small row groups.
	full := cmp.Or(w.RowGroupRows, rowGroupRows) / 2
	var reuse []int
	kept := make([]bool, len(c.groups))
	for i, g := range c.groups {
		if g.NumRows() >= full && !hasKey(g, replace) {
			reuse, kept[i] = append(reuse, i), true
		}
	}
	if len(reuse) == 0 {
		return st, false, nil
	}
	// From here on c is ours: its reused groups go to the new cache, the others are released.
	var dirty []arrow.RecordBatch
	defer func() {
		if err != nil {
			release(dirty)
			release(c.groups)
		}
	}()
	for i, g := range c.groups {
		if kept[i] {
			continue
		}
		g.Retain()
		out, _, err := dropKeys(ctx, g, replace)
		if err != nil {
			return st, true, err
		}
		if out.NumRows() == 0 {
			out.Release()
			continue
		}
		dirty = append(dirty, out)
	}
	if len(add) > 0 {
		rec, err := buildRecord(schema, add)
		if err != nil {
			return st, true, fmt.Errorf("jira: %s rows: %w", filepath.Base(filepath.Dir(path)), err)
		}
		dirty = append(dirty, rec)
	}

	// The new rows, encoded as a file of their own whose row groups are then copied.
	var encoded bytes.Buffer
	fw, err := pqarrow.NewFileWriter(schema, &encoded, w.props(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return st, true, err
	}
	for _, b := range dirty {
		if err := fw.WriteBuffered(b); err != nil {
			fw.Close()
			return st, true, err
		}
	}
	if err := fw.Close(); err != nil {
		return st, true, err
	}
	freshMeta, err := fw.FileMetadata() // the footer it wrote
	if err != nil {
		return st, true, err
	}
	if !spliceable(freshMeta) {
		return st, true, errors.New("jira: encoded row groups cannot be copied")
	}

	old, err := os.Open(path)
	if err != nil {
		return st, true, err
	}
	defer old.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+month+".parquet.tmp-*")
	if err != nil {
		return st, true, err
	}
	defer os.Remove(tmp.Name())       // no-op once renamed
	out, err := freshMeta.Subset(nil) // the schema and key-value metadata, no row groups
	if err != nil {
		tmp.Close()
		return st, true, err
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	pos := int64(len(parquetMagic))
	bw.WriteString(parquetMagic)
	for _, i := range reuse {
		if err := copyRowGroup(bw, &pos, old, c.meta, i, out); err != nil {
			tmp.Close()
			return st, true, err
		}
	}
	src := bytes.NewReader(encoded.Bytes())
	for i := range freshMeta.RowGroups {
		if err := copyRowGroup(bw, &pos, src, freshMeta, i, out); err != nil {
			tmp.Close()
			return st, true, err
		}
	}
	out.NumRows = 0
	for i, rg := range out.RowGroups {
		ordinal := int16(i)
		rg.Ordinal = &ordinal
		out.NumRows += rg.NumRows
	}
	n, err := out.WriteTo(bw, nil)
	if err == nil {
		err = binary.Write(bw, binary.LittleEndian, uint32(n))
	}
	if err == nil {
		_, err = bw.WriteString(parquetMagic)
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return st, true, fmt.Errorf("jira: write %s: %w", path, err)
	}
	if err := store.PublishFile(tmp.Name(), path); err != nil {
		return st, true, err
	}
	st = TableStats{Rows: out.NumRows, Changed: true, GroupsCopied: len(reuse), GroupsEncoded: len(freshMeta.RowGroups)}
	if fi, err := os.Stat(path); err == nil {
		st.Bytes = fi.Size()
	}

	// The new file's rows: the reused groups, then the encoded ones.
	var rows []arrow.RecordBatch
	for i, g := range c.groups {
		if kept[i] {
			rows = append(rows, g)
		} else {
			g.Release()
		}
	}
	w.keep(path, out, append(rows, dirty...))
	return st, true, nil
}

const parquetMagic = "PAR1"

// load reads a month file the writer has not cached (after a start, or an eviction) into a
// cachedFile, so that even its first rewrite copies the row groups it can. It gives nil when
// the file is missing, unreadable, too big for the cache or in another schema: the caller then
// rewrites the whole file, and reports what is wrong with it.
func (w *PartitionWriter) load(ctx context.Context, path string, schema *arrow.Schema) *cachedFile {
	if w.CacheBytes <= 0 {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	f, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil
	}
	defer f.Close()
	meta := f.MetaData()
	var size int64
	for _, rg := range meta.RowGroups {
		size += rg.TotalByteSize
	}
	if size > w.CacheBytes || !spliceable(meta) {
		return nil
	}
	fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{Parallel: true, BatchSize: int64(cmp.Or(w.RowGroupRows, rowGroupRows))}, memory.DefaultAllocator)
	if err != nil {
		return nil
	}
	c := &cachedFile{file: fi, meta: meta}
	for i := range meta.RowGroups {
		g, err := readGroup(ctx, fr, i, schema)
		if err != nil {
			release(c.groups)
			return nil
		}
		c.groups = append(c.groups, g)
	}
	return c
}

// sameColumns reports whether a and b have the same columns in the same order (the field
// metadata a Parquet reader adds aside).
func sameColumns(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i, f := range a.Fields() {
		g := b.Field(i)
		if f.Name != g.Name || f.Nullable != g.Nullable || !arrow.TypeEqual(f.Type, g.Type) {
			return false
		}
	}
	return true
}

// readGroup reads row group i into one batch, which must be in schema.
func readGroup(ctx context.Context, fr *pqarrow.FileReader, i int, schema *arrow.Schema) (arrow.RecordBatch, error) {
	rr, err := fr.GetRecordReader(ctx, nil, []int{i})
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	var parts []arrow.RecordBatch
	defer func() { release(parts) }()
	for rr.Next() {
		b := rr.RecordBatch()
		if !sameColumns(b.Schema(), schema) {
			return nil, errors.New("jira: month file in another schema")
		}
		parts = append(parts, array.NewRecordBatch(schema, b.Columns(), b.NumRows()))
	}
	if err := rr.Err(); err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, errors.New("jira: empty row group")
	}
	return concatBatches(parts)
}

// spliceable reports whether meta's column chunks can be copied to another file by moving
// their offsets: no page indexes, bloom filters or encryption, which live outside the chunks.
func spliceable(meta *metadata.FileMetaData) bool {
	for _, rg := range meta.RowGroups {
		for _, c := range rg.Columns {
			if c.MetaData == nil || c.FilePath != nil || c.OffsetIndexOffset != nil || c.ColumnIndexOffset != nil ||
				c.CryptoMetadata != nil || c.MetaData.BloomFilterOffset != nil {
				return false
			}
		}
	}
	return true
}

// copyRowGroup copies row group i of from, whose chunks src holds, to w at *pos, and appends
// its metadata with the offsets moved there to to.
func copyRowGroup(w io.Writer, pos *int64, src io.ReaderAt, from *metadata.FileMetaData, i int, to *metadata.FileMetaData) error {
	rg := *from.RowGroups[i]
	rg.Columns = slices.Clone(rg.Columns)
	shift := func(p *int64, delta int64) *int64 {
		if p == nil {
			return nil
		}
		v := *p + delta
		return &v
	}
	for j, c := range rg.Columns {
		md := *c.MetaData
		start := md.DataPageOffset
		if d := md.DictionaryPageOffset; d != nil && *d > 0 && *d < start {
			start = *d
		}
		if _, err := io.Copy(w, io.NewSectionReader(src, start, md.TotalCompressedSize)); err != nil {
			return err
		}
		delta := *pos - start
		*pos += md.TotalCompressedSize
		md.DataPageOffset += delta
		md.DictionaryPageOffset = shift(md.DictionaryPageOffset, delta)
		md.IndexPageOffset = shift(md.IndexPageOffset, delta)
		chunk := *c
		chunk.FileOffset += delta
		chunk.MetaData = &md
		rg.Columns[j] = &chunk
		if j == 0 {
			rg.FileOffset = shift(&start, delta)
		}
	}
	to.RowGroups = append(to.RowGroups, &rg)
	return nil
}

// hasKey reports whether b holds a row of an issue in replace.
func hasKey(b arrow.RecordBatch, replace map[string]bool) bool {
	idx := b.Schema().FieldIndices("issue_key")
	if len(idx) == 0 {
		return true // cannot tell: treat as touched
	}
	keys, ok := b.Column(idx[0]).(*array.String)
	if !ok {
		return true
	}
	for i := range keys.Len() {
		if keys.IsValid(i) && replace[keys.Value(i)] {
			return true
		}
	}
	return false
}

// alignGroups cuts batches (a file's rows in order) into one batch per row group of meta,
// each in buffers of its own, so that a row group's rows can be kept or dropped alone.
func alignGroups(batches []arrow.RecordBatch, meta *metadata.FileMetaData) ([]arrow.RecordBatch, error) {
	defer release(batches)
	var groups []arrow.RecordBatch
	fail := func(err error) ([]arrow.RecordBatch, error) {
		release(groups)
		return nil, err
	}
	bi, off := 0, int64(0) // the next row: batch bi, row off
	for _, rg := range meta.RowGroups {
		need := rg.NumRows
		if bi < len(batches) && off == 0 && batches[bi].NumRows() == need {
			// Already one batch of its own (a kept group, or fresh rows): no copy.
			batches[bi].Retain()
			groups = append(groups, batches[bi])
			bi++
			continue
		}
		var parts []arrow.RecordBatch
		for need > 0 {
			if bi == len(batches) {
				release(parts)
				return fail(errors.New("jira: fewer rows than row groups"))
			}
			b := batches[bi]
			take := min(need, b.NumRows()-off)
			parts = append(parts, b.NewSlice(off, off+take))
			need -= take
			off += take
			if off == b.NumRows() {
				bi, off = bi+1, 0
			}
		}
		g, err := concatBatches(parts)
		release(parts)
		if err != nil {
			return fail(err)
		}
		groups = append(groups, g)
	}
	for ; bi < len(batches); bi, off = bi+1, 0 {
		if batches[bi].NumRows() > off {
			return fail(errors.New("jira: more rows than row groups"))
		}
	}
	return groups, nil
}

// concatBatches copies parts (of one schema) into one batch.
func concatBatches(parts []arrow.RecordBatch) (arrow.RecordBatch, error) {
	schema := parts[0].Schema()
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var rows int64
	for _, p := range parts {
		rows += p.NumRows()
	}
	for i := range cols {
		arrs := make([]arrow.Array, len(parts))
		for j, p := range parts {
			arrs[j] = p.Column(i)
		}
		c, err := array.Concatenate(arrs, memory.DefaultAllocator)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	return array.NewRecordBatch(schema, cols, rows), nil
}
