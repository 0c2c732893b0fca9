package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
)

// DefaultRowGroupRows is the row group size when ConvertOptions.RowGroupRows is 0.
const DefaultRowGroupRows = 64 * 1024

// maxBatchBytes caps the raw bytes of one batch (and so of one row group), whatever the row count.
const maxBatchBytes = 64 << 20

// ConvertOptions says how to read the CSV files and what to write.
type ConvertOptions struct {
	Format CSVFormat
	// Columns are names and source types in file order. With Format.Header the header names the
	// columns and Columns only supplies types (matched by name); without it Columns names them.
	// Type "" means infer.
	Columns      []Column
	RowGroupRows int               // 0: DefaultRowGroupRows
	Metadata     map[string]string // Parquet footer key-values, e.g. table_id
	// Progress, when set, is called from a converter goroutine after each batch.
	Progress func(bytesRead, rows int64)
}

// ConvertReport describes a finished conversion.
type ConvertReport struct {
	Rows        int64
	Columns     []Column // final types: STRING, INTEGER, NUMERIC, DECIMAL(p,s), BOOLEAN, DATE, TIMESTAMP, TIMESTAMP_TZ
	InputBytes  int64    // size of the input files on disk
	OutputBytes int64
	Warnings    []ConversionWarning
}

// ConversionWarning counts the values of one column that did not parse as its type and were
// written as null.
type ConversionWarning struct {
	Column   string
	Count    int64
	File     string // file of the first such value
	FirstRow int64  // data row number of the first such value within File (1 = first row after the header)
	Example  string
	Reason   string
}

// ConvertCSV converts CSV files, read in order as one table, into one typed Parquet file at
// outPath. Memory stays bounded whatever the input size: rows stream through batches of
// RowGroupRows rows. outPath appears whole or not at all; on error or cancellation a previous
// file at outPath is left as it was.
//
// Columns without a declared type get the narrowest type every one of their values parses as.
// The types are guessed from the first batch and checked against every value while converting;
// only if a later value does not fit the guess is the input read a second time with the types
// the whole input calls for. So inference usually costs no second pass, and is still exact.
func ConvertCSV(ctx context.Context, files []string, opts ConvertOptions, outPath string) (*ConvertReport, error) {
	if len(files) == 0 {
		return nil, errors.New("convert: no input files")
	}
	var inputBytes int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		inputBytes += st.Size()
	}
	src := &csvSource{files: files, format: opts.Format, progress: opts.Progress}
	types, toInfer, err := src.resolveColumns(opts.Columns)
	if err != nil {
		return nil, err
	}
	lim := batchLimits{rows: opts.RowGroupRows, bytes: maxBatchBytes}
	if lim.rows <= 0 {
		lim.rows = DefaultRowGroupRows
	}
	rep, final, err := convertPass(ctx, src, lim, types, toInfer, opts, outPath)
	if errors.Is(err, errGuessWrong) {
		slog.Debug("inferred types changed after the first batch; converting again", "out", outPath)
		for j, i := range toInfer {
			types[i] = final[j]
		}
		rep, _, err = convertPass(ctx, src, lim, types, nil, opts, outPath)
	}
	if err != nil {
		return nil, err
	}
	rep.InputBytes = inputBytes
	if st, err := os.Stat(outPath); err == nil {
		rep.OutputBytes = st.Size()
	}
	slog.Debug("converted CSV", "out", outPath, "rows", rep.Rows, "in_bytes", rep.InputBytes, "out_bytes", rep.OutputBytes, "warnings", len(rep.Warnings))
	return rep, nil
}

// errGuessWrong says a value after the first batch did not fit the type guessed for its column.
var errGuessWrong = errors.New("inferred type guessed from the first batch does not fit")

// convertPass reads the input once and writes outPath. The columns listed in toInfer get the
// types inferred from the first batch, and every value of theirs is checked; if the types the
// whole input calls for differ, the pass fails with errGuessWrong and returns those types.
func convertPass(ctx context.Context, src *csvSource, lim batchLimits, declared []colType, toInfer []int, opts ConvertOptions, outPath string) (*ConvertReport, []colType, error) {
	types := slices.Clone(declared)
	infer := make([]inferColumn, len(toInfer))
	for j := range infer {
		infer[j] = newInferColumn()
	}
	var guess []colType
	// Values are observed on the parsing goroutine; guess is written before the first batch is
	// handed over and never again, and infer is read only after the scan has ended.
	src.observe = nil
	if len(toInfer) > 0 {
		src.observe = func(b *rawBatch) {
			for j, i := range toInfer {
				c, raw := &infer[j], &b.cols[i]
				for r := 0; r < b.rows && c.can != 0; r++ {
					c.observe(raw.value(r))
				}
			}
			if guess == nil {
				guess = make([]colType, len(toInfer))
				for j := range infer {
					guess[j] = infer[j].result()
				}
			}
		}
	}

	rep := &ConvertReport{}
	var convs []*columnConverter
	var schema *arrow.Schema
	setup := func() {
		for j, i := range toInfer {
			if guess != nil {
				types[i] = guess[j]
			}
		}
		fields := make([]arrow.Field, len(types))
		for i, t := range types {
			convs = append(convs, &columnConverter{name: src.names[i], typ: t})
			fields[i] = arrow.Field{Name: src.names[i], Type: t.arrow(), Nullable: true}
			rep.Columns = append(rep.Columns, Column{Name: src.names[i], Type: t.String(), Description: describe(opts.Columns, src.names[i])})
		}
		meta := footerMetadata(opts.Metadata)
		schema = arrow.NewSchema(fields, &meta)
	}

	var final []colType
	err := WriteFileAtomic(outPath, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(writerOnly{w}, 1<<20)
		var pw *parquetWriter
		var cols []arrow.Array
		err := src.scan(ctx, lim, func(b *rawBatch) error {
			if pw == nil {
				setup()
				var err error
				if pw, err = newParquetWriter(bw, schema, writerProps(lim, types, src.names, b)); err != nil {
					return err
				}
				cols = make([]arrow.Array, len(convs))
			}
			for i, c := range convs {
				cols[i] = c.build(&b.cols[i], b)
			}
			err := pw.write(cols, b.rows)
			for _, c := range cols {
				c.Release()
			}
			rep.Rows += int64(b.rows)
			return err
		})
		if err != nil {
			return err
		}
		if pw == nil { // no rows: still a valid, typed file
			setup()
			if pw, err = newParquetWriter(bw, schema, writerProps(lim, types, src.names, nil)); err != nil {
				return err
			}
		}
		for j, i := range toInfer {
			if t := infer[j].result(); t != types[i] {
				final = make([]colType, len(toInfer))
				for j := range infer {
					final[j] = infer[j].result()
				}
				return errGuessWrong
			}
		}
		if err := pw.close(); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return nil, final, err
	}
	for _, c := range convs {
		if c.warn.Count > 0 {
			rep.Warnings = append(rep.Warnings, c.warn)
		}
	}
	return rep, nil, nil
}

// writerProps sets snappy compression and the row group size, and dictionary encoding for the
// string columns whose first batch has few distinct values. Dictionary encoding of a column with
// mostly unique values (ids, emails, free text) costs hashing time and memory and then falls back
// to plain encoding anyway.
func writerProps(lim batchLimits, types []colType, names []string, first *rawBatch) *parquet.WriterProperties {
	props := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(int64(lim.rows)),
		parquet.WithStoreDecimalAsInteger(true),
		parquet.WithCreatedBy("analyst"),
	}
	for i, t := range types {
		if t.kind == kString && (first == nil || fewDistinct(&first.cols[i], first.rows)) {
			props = append(props, parquet.WithDictionaryFor(names[i], true))
		}
	}
	return parquet.NewWriterProperties(props...)
}

// fewDistinct reports whether a column has at most a quarter as many distinct values as rows.
func fewDistinct(c *rawColumn, rows int) bool {
	limit := rows / 4
	seen := make(map[string]struct{}, min(limit, 4096))
	for i := range rows {
		// The keys view the batch's bytes; the map is dropped before the batch changes.
		seen[unsafeString(c.value(i))] = struct{}{}
		if len(seen) > limit {
			return false
		}
	}
	return true
}

// writerOnly hides Close: the Parquet writer closes a writer that has it, and WriteFileAtomic
// must do that itself.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

func describe(cols []Column, name string) string {
	for _, c := range cols {
		if c.Name == name {
			return c.Description
		}
	}
	return ""
}

func footerMetadata(m map[string]string) arrow.Metadata {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	return arrow.NewMetadata(keys, vals)
}

// resolveColumns fixes the column names (header or declared) and the declared types, and lists
// the columns whose type is still to be inferred.
func (s *csvSource) resolveColumns(declared []Column) ([]colType, []int, error) {
	if s.format.Header {
		names, err := s.firstHeader()
		if err != nil {
			return nil, nil, err
		}
		s.names = names
	} else {
		if len(declared) == 0 {
			return nil, nil, fmt.Errorf("%s: a CSV without a header line needs its columns declared", s.files[0])
		}
		for _, c := range declared {
			s.names = append(s.names, c.Name)
		}
	}
	byName := make(map[string]string, len(declared))
	for _, c := range declared {
		byName[c.Name] = c.Type
	}
	pos := make(map[string]bool, len(s.names))
	for _, n := range s.names {
		pos[n] = true
	}
	for _, c := range declared {
		if !pos[c.Name] {
			return nil, nil, fmt.Errorf("%s: declared column %q is not in the header %q", s.files[0], c.Name, s.names)
		}
	}
	types := make([]colType, len(s.names))
	var toInfer []int
	for i, n := range s.names {
		if t := byName[n]; t != "" {
			types[i] = parseColumnType(t)
		} else {
			toInfer = append(toInfer, i)
		}
	}
	return types, toInfer, nil
}

// columnConverter turns the raw bytes of one column into an Arrow array, reusing its buffers
// from batch to batch.
type columnConverter struct {
	name  string
	typ   colType
	warn  ConversionWarning
	valid []byte
	vals  []byte // fixed-width values, or the boolean bitmap
}

func (c *columnConverter) invalid(b *rawBatch, row int, v []byte, reason string) {
	c.warn.Count++
	if c.warn.Count == 1 {
		c.warn.Column = c.name
		c.warn.File, c.warn.FirstRow = b.locate(row)
		if len(v) > 100 {
			v = v[:100]
		}
		c.warn.Example = string(v)
		c.warn.Reason = reason
	}
}

// grow returns a zeroed buffer of n bytes, reusing buf.
func grow(buf []byte, n int) []byte {
	if cap(buf) < n {
		return make([]byte, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}

// build converts a column of b. The returned array may share memory with raw and with c's
// buffers: it must be released before either is reused.
func (c *columnConverter) build(raw *rawColumn, b *rawBatch) arrow.Array {
	n := b.rows
	c.valid = grow(c.valid, int(bitutil.BytesForBits(int64(n))))
	nulls := 0
	var width int
	switch c.typ.kind {
	case kString:
		for i := 0; i < n; i++ {
			if raw.offsets[i+1] > raw.offsets[i] {
				bitutil.SetBit(c.valid, i)
			} else {
				nulls++
			}
		}
		data := array.NewData(c.typ.arrow(), n, []*memory.Buffer{
			validity(c.valid, nulls),
			memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(raw.offsets[:n+1])),
			memory.NewBufferBytes(raw.data),
		}, nil, nulls, 0)
		defer data.Release()
		return array.MakeFromData(data)
	case kBool:
		c.vals = grow(c.vals, int(bitutil.BytesForBits(int64(n))))
		for i := 0; i < n; i++ {
			v := raw.value(i)
			if len(v) == 0 {
				nulls++
				continue
			}
			t, ok := parseBool(v)
			if !ok {
				nulls++
				c.invalid(b, i, v, "not a boolean")
				continue
			}
			bitutil.SetBit(c.valid, i)
			if t {
				bitutil.SetBit(c.vals, i)
			}
		}
	case kInt, kFloat, kTimestamp, kTimestampTZ:
		width = 8
	case kDate:
		width = 4
	case kDecimal:
		width = 16
	}
	if width > 0 {
		c.vals = grow(c.vals, n*width)
		nulls = c.fill(raw, b, n)
	}
	data := array.NewData(c.typ.arrow(), n, []*memory.Buffer{validity(c.valid, nulls), memory.NewBufferBytes(c.vals)}, nil, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// fill parses fixed-width values into c.vals and returns the null count.
func (c *columnConverter) fill(raw *rawColumn, b *rawBatch, n int) int {
	nulls := 0
	var (
		i64 []int64
		f64 []float64
		i32 []int32
		dec []decimal128.Num
	)
	switch c.typ.kind {
	case kInt, kTimestamp, kTimestampTZ:
		i64 = arrow.Int64Traits.CastFromBytes(c.vals)
	case kFloat:
		f64 = arrow.Float64Traits.CastFromBytes(c.vals)
	case kDate:
		i32 = arrow.Int32Traits.CastFromBytes(c.vals)
	case kDecimal:
		dec = arrow.Decimal128Traits.CastFromBytes(c.vals)
	}
	for i := 0; i < n; i++ {
		v := raw.value(i)
		if len(v) == 0 {
			nulls++
			continue
		}
		ok := false
		var reason string
		switch c.typ.kind {
		case kInt:
			i64[i], ok = parseInt(v)
			reason = "not an integer"
		case kFloat:
			f64[i], ok = parseFloat(v)
			reason = "not a number"
		case kDecimal:
			dec[i], ok = parseDecimal(v, c.typ.prec, c.typ.scale)
			reason = "not a number that fits " + c.typ.String()
		case kDate:
			var dt dateTime
			dt, ok = parseDateTime(v)
			i32[i] = int32(dt.days)
			reason = "not a date (YYYY-MM-DD)"
		case kTimestamp, kTimestampTZ:
			var dt dateTime
			dt, ok = parseDateTime(v)
			i64[i] = dt.micros
			reason = "not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][±HH:MM])"
		}
		if !ok {
			nulls++
			c.invalid(b, i, v, reason)
			continue
		}
		bitutil.SetBit(c.valid, i)
	}
	return nulls
}

// validity returns the validity bitmap buffer, or nil when no value is null (cheaper to encode).
func validity(bits []byte, nulls int) *memory.Buffer {
	if nulls == 0 {
		return nil
	}
	return memory.NewBufferBytes(bits)
}
