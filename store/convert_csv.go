package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/text/encoding/charmap"
)

// This file reads CSV files into columnar batches of raw bytes. It is a hand-rolled RFC 4180
// reader: every field is copied once, straight into its column's buffer, so a batch is ready to
// become Arrow arrays without per-cell allocations (encoding/csv allocates a string per field).

// rawColumn holds one column of a batch: field i is data[offsets[i]:offsets[i+1]].
type rawColumn struct {
	data    []byte
	offsets []int32
}

func (c *rawColumn) value(i int) []byte { return c.data[c.offsets[i]:c.offsets[i+1]] }

// segment maps the rows of a batch from index first on to a file and its row numbers.
type segment struct {
	first   int
	file    string
	fileRow int64 // 1-based data row number within file of the batch row first
}

// rawBatch is up to batchRows rows of all columns.
type rawBatch struct {
	cols     []rawColumn
	rows     int
	segments []segment
}

func newRawBatch(ncols int) *rawBatch {
	b := &rawBatch{cols: make([]rawColumn, ncols)}
	b.reset()
	return b
}

func (b *rawBatch) reset() {
	for i := range b.cols {
		b.cols[i].data = b.cols[i].data[:0]
		b.cols[i].offsets = append(b.cols[i].offsets[:0], 0)
	}
	b.rows = 0
	b.segments = b.segments[:0]
}

// rollback drops a partly read record.
func (b *rawBatch) rollback() {
	for i := range b.cols {
		c := &b.cols[i]
		c.offsets = c.offsets[:b.rows+1]
		c.data = c.data[:c.offsets[b.rows]]
	}
}

func (b *rawBatch) dataBytes() int {
	n := 0
	for i := range b.cols {
		n += len(b.cols[i].data)
	}
	return n
}

// locate returns the file and the file's data row number of batch row i.
func (b *rawBatch) locate(i int) (string, int64) {
	s := b.segments[0]
	for _, t := range b.segments[1:] {
		if t.first > i {
			break
		}
		s = t
	}
	return s.file, s.fileRow + int64(i-s.first)
}

// recordReader splits a byte stream into records.
type recordReader struct {
	src      io.Reader
	buf      []byte
	pos, end int
	eof      bool
	err      error
	delim    byte
	quote    byte
	special  [256]bool // bytes that end an unquoted run: delimiter, quote, newline
	line     int64     // newlines consumed so far
	recLine  int64     // line on which the current record starts
	quoted   bool      // the last field read was quoted
	maxField int       // grow the column list up to this many fields (header), or 0
}

func newRecordReader(src io.Reader, delim, quote byte, bufSize int) *recordReader {
	r := &recordReader{src: src, buf: make([]byte, bufSize), delim: delim, quote: quote}
	r.special[delim] = true
	r.special[quote] = true
	r.special['\n'] = true
	return r
}

// ensure makes at least one unread byte available; false at the end of input (or on a read error).
func (r *recordReader) ensure() bool {
	if r.pos < r.end {
		return true
	}
	for !r.eof {
		n, err := r.src.Read(r.buf)
		if err != nil {
			r.eof = true
			if err != io.EOF {
				r.err = err
			}
		}
		if n > 0 {
			r.pos, r.end = 0, n
			return true
		}
	}
	return false
}

// errRecord describes a malformed record; the caller adds the file and row.
type errRecord struct{ msg string }

func (e *errRecord) Error() string { return e.msg }

// readRecord appends the next record's fields to b's columns (not yet counting it as a row) and
// returns the number of fields, or io.EOF at the end of the input. Blank lines are skipped.
func (r *recordReader) readRecord(b *rawBatch) (int, error) {
	for {
		n, err := r.readFields(b)
		if err != nil {
			b.rollback()
			return 0, err
		}
		if n == 1 && !r.quoted && b.cols[0].offsets[b.rows+1] == b.cols[0].offsets[b.rows] {
			b.rollback() // a blank line
			continue
		}
		return n, nil
	}
}

func (r *recordReader) readFields(b *rawBatch) (int, error) {
	field := 0
	r.recLine = r.line + 1
	for {
		if field >= len(b.cols) {
			if field >= r.maxField {
				return 0, &errRecord{fmt.Sprintf("more than %d fields", len(b.cols))}
			}
			b.cols = append(b.cols, rawColumn{offsets: make([]int32, b.rows+1)})
		}
		col := &b.cols[field]
		start := len(col.data)
		r.quoted = false
		if !r.ensure() {
			if r.err != nil {
				return 0, r.err
			}
			if field == 0 {
				return 0, io.EOF
			}
			col.offsets = append(col.offsets, int32(len(col.data))) // "a,b," ends with an empty field
			return field + 1, nil
		}
		if r.buf[r.pos] == r.quote {
			r.quoted = true
			r.pos++
			for {
				if !r.ensure() {
					if r.err != nil {
						return 0, r.err
					}
					return 0, &errRecord{"quoted field is not closed before the end of the file"}
				}
				chunk := r.buf[r.pos:r.end]
				i := bytes.IndexByte(chunk, r.quote)
				if i < 0 {
					r.line += int64(bytes.Count(chunk, nl))
					col.data = append(col.data, chunk...)
					r.pos = r.end
					continue
				}
				r.line += int64(bytes.Count(chunk[:i], nl))
				col.data = append(col.data, chunk[:i]...)
				r.pos += i + 1
				if r.ensure() && r.buf[r.pos] == r.quote { // "" is an escaped quote
					col.data = append(col.data, r.quote)
					r.pos++
					continue
				}
				break
			}
			col.offsets = append(col.offsets, int32(len(col.data)))
			if !r.ensure() {
				if r.err != nil {
					return 0, r.err
				}
				return field + 1, nil
			}
			switch c := r.buf[r.pos]; c {
			case r.delim:
				r.pos++
				field++
				continue
			case '\n':
				r.pos++
				r.line++
				return field + 1, nil
			case '\r':
				r.pos++
				if !r.ensure() {
					return field + 1, r.err
				}
				if r.buf[r.pos] == '\n' {
					r.pos++
					r.line++
					return field + 1, nil
				}
				return 0, &errRecord{"unexpected carriage return after a closing quote"}
			default:
				return 0, &errRecord{fmt.Sprintf("unexpected %q after a closing quote", c)}
			}
		}
		for {
			if !r.ensure() {
				if r.err != nil {
					return 0, r.err
				}
				col.offsets = append(col.offsets, int32(trimCR(col, start)))
				return field + 1, nil
			}
			chunk := r.buf[r.pos:r.end]
			i := 0
			for i < len(chunk) && !r.special[chunk[i]] {
				i++
			}
			col.data = append(col.data, chunk[:i]...)
			if i == len(chunk) {
				r.pos = r.end
				continue
			}
			r.pos += i + 1
			switch chunk[i] {
			case r.delim:
				col.offsets = append(col.offsets, int32(len(col.data)))
				field++
			case '\n':
				r.line++
				col.offsets = append(col.offsets, int32(trimCR(col, start)))
				return field + 1, nil
			default:
				return 0, &errRecord{"quote inside an unquoted field (quote the whole field and double the quote)"}
			}
			break
		}
	}
}

var nl = []byte{'\n'}

// trimCR drops the \r of a \r\n line end from the field that ends the line.
func trimCR(col *rawColumn, start int) int {
	if n := len(col.data); n > start && col.data[n-1] == '\r' {
		col.data = col.data[:n-1]
	}
	return len(col.data)
}

// countingReader counts the bytes read from a file, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// openCSV opens one input file: gzip is detected by its magic bytes, a UTF-8 BOM is dropped and
// latin-1/windows-1252 text is decoded to UTF-8. close releases the file.
func openCSV(path string, encoding string, counter *countingReader) (io.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	counter.r = f
	br := bufio.NewReaderSize(counter, 256<<10)
	var r io.Reader = br
	var gz *gzip.Reader
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		if gz, err = gzip.NewReader(br); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		r = bufio.NewReaderSize(gz, 256<<10)
	}
	closer := func() {
		if gz != nil {
			gz.Close()
		}
		f.Close()
	}
	pr := r.(*bufio.Reader)
	if bom, _ := pr.Peek(3); len(bom) == 3 && bom[0] == 0xEF && bom[1] == 0xBB && bom[2] == 0xBF {
		pr.Discard(3)
	}
	switch enc := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(encoding), "_", "-")); enc {
	case "", "utf-8", "utf8":
	case "latin-1", "latin1", "iso-8859-1":
		r = charmap.ISO8859_1.NewDecoder().Reader(r)
	case "windows-1252", "cp1252":
		r = charmap.Windows1252.NewDecoder().Reader(r)
	default:
		closer()
		return nil, nil, fmt.Errorf("%s: unknown encoding %q (use utf-8, latin-1 or windows-1252)", path, encoding)
	}
	return r, closer, nil
}

// csvSource reads a list of CSV files as one table.
type csvSource struct {
	files    []string
	format   CSVFormat
	names    []string
	progress func(bytesRead, rows int64)
	observe  func(*rawBatch) // when set, sees each full batch on the parsing goroutine
	batches  []*rawBatch     // kept from pass to pass, so their grown buffers are reused
}

func formatBytes(f CSVFormat) (delim, quote byte, err error) {
	d, q := f.Delimiter, f.Quote
	if d == 0 {
		d = ','
	}
	if q == 0 {
		q = '"'
	}
	if d > 127 || q > 127 || d == '\n' || d == '\r' || q == '\n' || q == '\r' || d == q {
		return 0, 0, fmt.Errorf("unsupported CSV delimiter %q / quote %q (single ASCII characters, not newlines, not equal)", d, q)
	}
	return byte(d), byte(q), nil
}

// readHeader reads the header record of a file.
func readHeader(rr *recordReader, path string) ([]string, error) {
	hb := newRawBatch(0)
	rr.maxField = 1 << 16
	defer func() { rr.maxField = 0 }()
	n, err := rr.readRecord(hb)
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file, expected a header line", path)
	}
	if err != nil {
		return nil, recordError(path, 0, rr, err)
	}
	names := make([]string, n)
	seen := make(map[string]bool, n)
	for i := range names {
		names[i] = string(hb.cols[i].value(0))
		if names[i] == "" {
			return nil, fmt.Errorf("%s: header column %d has no name", path, i+1)
		}
		if seen[names[i]] {
			return nil, fmt.Errorf("%s: header names column %q twice", path, names[i])
		}
		seen[names[i]] = true
	}
	return names, nil
}

func recordError(path string, row int64, rr *recordReader, err error) error {
	var re *errRecord
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if row == 0 {
		return fmt.Errorf("%s: header (line %d): %s", path, rr.recLine, re.msg)
	}
	return fmt.Errorf("%s: row %d (line %d): %s", path, row, rr.recLine, re.msg)
}

// firstHeader reads the column names from the first file's header.
func (s *csvSource) firstHeader() ([]string, error) {
	delim, quote, err := formatBytes(s.format)
	if err != nil {
		return nil, err
	}
	var counter countingReader
	r, closer, err := openCSV(s.files[0], s.format.Encoding, &counter)
	if err != nil {
		return nil, err
	}
	defer closer()
	return readHeader(newRecordReader(r, delim, quote, 64<<10), s.files[0])
}

// batchLimits bound a batch by rows and by bytes, so wide rows cannot blow up memory.
type batchLimits struct {
	rows  int
	bytes int
}

// scan reads every file in order and hands full batches to consume, on the calling goroutine,
// while the next batch is parsed on another (parse and consume overlap on two cores). Two
// batches exist, so memory is bounded by the batch limits.
func (s *csvSource) scan(ctx context.Context, lim batchLimits, consume func(*rawBatch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const inFlight = 2
	for len(s.batches) < inFlight {
		s.batches = append(s.batches, newRawBatch(len(s.names)))
	}
	full := make(chan *rawBatch, 1)
	free := make(chan *rawBatch, inFlight)
	for _, b := range s.batches {
		b.reset()
		free <- b
	}
	perr := make(chan error, 1)
	go func() {
		defer close(full)
		perr <- s.produce(ctx, lim, free, full)
	}()
	var cerr error
	for b := range full {
		if cerr == nil {
			if cerr = consume(b); cerr != nil {
				cancel()
			}
		}
		b.reset()
		free <- b
	}
	if err := <-perr; cerr == nil && err != nil {
		cerr = err
	}
	return cerr
}

func (s *csvSource) produce(ctx context.Context, lim batchLimits, free <-chan *rawBatch, full chan<- *rawBatch) error {
	delim, quote, err := formatBytes(s.format)
	if err != nil {
		return err
	}
	var b *rawBatch
	get := func() error {
		select {
		case b = <-free:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	send := func() error {
		if s.observe != nil {
			s.observe(b)
		}
		select {
		case full <- b:
			b = nil
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := get(); err != nil {
		return err
	}
	var doneBytes, rows int64
	ncols := len(s.names)
	for _, path := range s.files {
		var counter countingReader
		r, closer, err := openCSV(path, s.format.Encoding, &counter)
		if err != nil {
			return err
		}
		err = func() error {
			defer closer()
			rr := newRecordReader(r, delim, quote, 1<<20)
			if s.format.Header {
				names, err := readHeader(rr, path)
				if err != nil {
					return err
				}
				if !equalStrings(names, s.names) {
					return fmt.Errorf("%s: header %q differs from the first file's %q", path, names, s.names)
				}
			}
			var fileRow int64
			b.segments = append(b.segments, segment{first: b.rows, file: path, fileRow: 1})
			for {
				n, err := rr.readRecord(b)
				if err == io.EOF {
					return nil
				}
				fileRow++
				if err != nil {
					return recordError(path, fileRow, rr, err)
				}
				if n != ncols {
					b.rollback()
					return fmt.Errorf("%s: row %d (line %d): %d fields, expected %d", path, fileRow, rr.recLine, n, ncols)
				}
				b.rows++
				rows++
				if b.rows >= lim.rows || (b.rows&255 == 0 && b.dataBytes() >= lim.bytes) {
					if s.progress != nil {
						s.progress(doneBytes+counter.n, rows)
					}
					if err := send(); err != nil {
						return err
					}
					if err := get(); err != nil {
						return err
					}
					b.segments = append(b.segments, segment{first: 0, file: path, fileRow: fileRow + 1})
				}
			}
		}()
		if err != nil {
			return err
		}
		doneBytes += counter.n
	}
	if s.progress != nil {
		s.progress(doneBytes, rows)
	}
	if b.rows > 0 {
		return send()
	}
	return nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
