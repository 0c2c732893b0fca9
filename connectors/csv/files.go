package csv

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// location says where a table's files are: the first existing candidate (a file or a folder
// of data files), or every file matching pattern.
type location struct {
	candidates []string
	pattern    string
}

// locate resolves table.CSV.Path against base, or falls back to <base>/<id>[.csv|.csv.gz].
func locate(base string, t config.Table) location {
	if t.CSV != nil && t.CSV.Path != "" {
		p := t.CSV.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		p = filepath.Clean(p)
		if hasMeta(p) {
			return location{pattern: p}
		}
		return location{candidates: []string{p}}
	}
	p := filepath.Join(base, t.ID)
	return location{candidates: []string{p, p + ".csv", p + ".csv.gz"}}
}

// matches reports whether path is (or would be, once written) one of the location's files.
func (l location) matches(path string) bool {
	if ignored(path) {
		return false
	}
	if l.pattern != "" {
		ok, _ := filepath.Match(l.pattern, path)
		return ok
	}
	for _, c := range l.candidates {
		if path == c || (filepath.Dir(path) == c && isDataFile(path)) {
			return true
		}
	}
	return false
}

// files lists the location's data files, sorted by name.
func (l location) files() ([]string, error) {
	if l.pattern != "" {
		matches, err := filepath.Glob(l.pattern)
		if err != nil {
			return nil, fmt.Errorf("bad file pattern %q: %w", l.pattern, err)
		}
		var out []string
		for _, m := range matches {
			if ignored(m) {
				continue
			}
			if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
				out = append(out, m)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w %s", ErrNoFiles, l.pattern)
		}
		sort.Strings(out)
		return out, nil
	}
	for _, c := range l.candidates {
		fi, err := os.Stat(c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", c, err)
		}
		if fi.IsDir() {
			return folderFiles(c)
		}
		return []string{c}, nil
	}
	if len(l.candidates) == 1 {
		return nil, fmt.Errorf("%w %s", ErrNoFiles, l.candidates[0])
	}
	return nil, fmt.Errorf("%w %s (tried %s)", ErrNoFiles, l.candidates[0], strings.Join(l.candidates, ", "))
}

// folderFiles lists the data files directly inside dir, sorted by name.
func folderFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("read folder %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() || ignored(p) || !isDataFile(p) {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %s (a folder: *.csv, *.csv.gz, *.tsv)", ErrNoFiles, filepath.Join(dir, "*"))
	}
	return out, nil
}

func tableFiles(base string, t config.Table) ([]string, error) {
	return locate(base, t).files()
}

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

// isDataFile reports whether a file in a table folder is part of the table.
func isDataFile(p string) bool {
	n := strings.ToLower(filepath.Base(p))
	for _, ext := range []string{".csv", ".csv.gz", ".tsv", ".tsv.gz"} {
		if strings.HasSuffix(n, ext) {
			return true
		}
	}
	return false
}

func isTSV(p string) bool {
	n := strings.ToLower(p)
	return strings.HasSuffix(n, ".tsv") || strings.HasSuffix(n, ".tsv.gz")
}

// ignored reports files that are being written or are not data: hidden files, editor backups
// and temp files of copy tools. They are never part of a table and never trigger a sync.
func ignored(p string) bool {
	n := filepath.Base(p)
	return strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".tmp") || strings.HasSuffix(n, "~") ||
		strings.HasSuffix(n, ".part")
}

// tableFormat turns table.CSV options into a store.CSVFormat. A table of only .tsv files
// defaults to a tab delimiter.
func tableFormat(t config.Table, files []string) (store.CSVFormat, error) {
	f := store.CSVFormat{Delimiter: ',', Quote: '"', Header: true, Encoding: "utf-8"}
	var o config.CSVTable
	if t.CSV != nil {
		o = *t.CSV
	}
	switch o.Delimiter {
	case "":
		allTSV := len(files) > 0
		for _, p := range files {
			allTSV = allTSV && isTSV(p)
		}
		if allTSV {
			f.Delimiter = '\t'
		}
	case `\t`, "tab", "TAB":
		f.Delimiter = '\t'
	default:
		r, err := oneRune("csv.delimiter", o.Delimiter)
		if err != nil {
			return f, err
		}
		f.Delimiter = r
	}
	if o.Quote != "" {
		r, err := oneRune("csv.quote", o.Quote)
		if err != nil {
			return f, err
		}
		f.Quote = r
	}
	if f.Delimiter == f.Quote {
		return f, fmt.Errorf("csv.delimiter and csv.quote are both %q", f.Delimiter)
	}
	if o.Header != nil {
		f.Header = *o.Header
	}
	enc, err := normalizeEncoding(o.Encoding)
	if err != nil {
		return f, err
	}
	f.Encoding = enc
	return f, nil
}

func oneRune(key, s string) (rune, error) {
	r, size := utf8.DecodeRuneInString(s)
	if size != len(s) || r == utf8.RuneError || r == '\n' || r == '\r' {
		return 0, fmt.Errorf("%s %q must be a single character (use \"\\t\" or tab for a tab)", key, s)
	}
	return r, nil
}

func normalizeEncoding(e string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(e)) {
	case "", "utf-8", "utf8":
		return "utf-8", nil
	case "latin-1", "latin1", "iso-8859-1", "iso8859-1":
		return "latin-1", nil
	case "windows-1252", "cp1252", "win-1252":
		return "windows-1252", nil
	}
	return "", fmt.Errorf("csv.encoding %q is not supported (use utf-8, latin-1 or windows-1252)", e)
}

// declaredColumns converts the table's declared columns.
func declaredColumns(decl []config.Column) []store.Column {
	if len(decl) == 0 {
		return nil
	}
	out := make([]store.Column, len(decl))
	for i, c := range decl {
		out[i] = store.Column{Name: c.Name, Type: c.Type, Description: c.Description}
	}
	return out
}

// tableColumns reads the first record of every file, checks that they agree and returns the
// columns in file order with the declared types (empty type: infer).
func tableColumns(t config.Table, files []string, f store.CSVFormat) ([]store.Column, error) {
	var first []string
	var firstFile string
	for _, file := range files {
		rec, err := firstRecord(file, f)
		if errors.Is(err, io.EOF) {
			if f.Header {
				return nil, fmt.Errorf("%s is empty; expected a header line", file)
			}
			continue // no header, no rows
		}
		if err != nil {
			return nil, err
		}
		if first == nil {
			first, firstFile = rec, file
			continue
		}
		if f.Header {
			if d := headerDiff(first, rec); d != "" {
				return nil, fmt.Errorf("headers differ between %s and %s: %s", firstFile, file, d)
			}
		} else if len(rec) != len(first) {
			return nil, fmt.Errorf("%s has %d columns but %s has %d", firstFile, len(first), file, len(rec))
		}
	}
	if !f.Header {
		if len(t.Columns) > 0 {
			if first != nil && len(first) != len(t.Columns) {
				return nil, fmt.Errorf("columns declares %d columns but %s has %d", len(t.Columns), firstFile, len(first))
			}
			return declaredColumns(t.Columns), nil
		}
		cols := make([]store.Column, len(first))
		for i := range cols {
			cols[i].Name = fmt.Sprintf("column%d", i+1)
		}
		return cols, nil
	}

	declared := map[string]config.Column{}
	for _, c := range t.Columns {
		declared[c.Name] = c
	}
	used := map[string]bool{}
	cols := make([]store.Column, len(first))
	for i, name := range first {
		cols[i].Name = name
		d, ok := declared[name]
		if !ok { // tolerate case differences between the catalogue and the file
			for k, c := range declared {
				if strings.EqualFold(k, name) && !used[k] {
					d, ok = c, true
					break
				}
			}
		}
		if ok {
			cols[i].Type, cols[i].Description = d.Type, d.Description
			used[d.Name] = true
		}
	}
	for _, c := range t.Columns {
		if !used[c.Name] {
			return nil, fmt.Errorf("declared column %q is not in the header of %s (columns: %s)",
				c.Name, firstFile, strings.Join(first, ", "))
		}
	}
	return cols, nil
}

// headerDiff describes the first difference between two headers, or returns "".
func headerDiff(a, b []string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("column %d is %q in the first and %q in the second", i+1, a[i], b[i])
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%d columns in the first, %d in the second", len(a), len(b))
	}
	return ""
}

// maxHeader bounds how much is read looking for the end of the first record.
const maxHeader = 1 << 20

// firstRecord reads and decodes the first record of a file; io.EOF for an empty file.
func firstRecord(path string, f store.CSVFormat) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read table file: %w", err)
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		gz, err := gzip.NewReader(fh)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	rec, err := parseRecord(newRuneReader(bufio.NewReaderSize(r, 64<<10), f.Encoding), f.Delimiter, f.Quote)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read first line of %s: %w", path, err)
	}
	return rec, err
}

// runeReader decodes a byte stream in one of the supported encodings.
type runeReader struct {
	br       *bufio.Reader
	encoding string
	start    bool
}

func newRuneReader(br *bufio.Reader, encoding string) *runeReader {
	return &runeReader{br: br, encoding: encoding, start: true}
}

var errNotUTF8 = errors.New("not valid UTF-8; set the table's csv.encoding (latin-1 or windows-1252)")

func (rr *runeReader) next() (rune, error) {
	if rr.encoding != "utf-8" {
		b, err := rr.br.ReadByte()
		if err != nil {
			return 0, err
		}
		if rr.encoding == "windows-1252" && b >= 0x80 && b < 0xA0 {
			return cp1252[b-0x80], nil
		}
		return rune(b), nil
	}
	r, size, err := rr.br.ReadRune()
	if err != nil {
		return 0, err
	}
	if r == utf8.RuneError && size == 1 {
		return 0, errNotUTF8
	}
	if rr.start {
		rr.start = false
		if r == '\uFEFF' { // byte order mark
			return rr.next()
		}
	}
	return r, nil
}

func (rr *runeReader) unread() {
	if rr.encoding != "utf-8" {
		_ = rr.br.UnreadByte()
	} else {
		_ = rr.br.UnreadRune()
	}
}

// parseRecord reads one CSV record: quoted fields may hold delimiters, doubled quotes and line
// breaks; a record ends at an unquoted \n or \r\n. It returns io.EOF when there is no record.
func parseRecord(rr *runeReader, delim, quote rune) ([]string, error) {
	var (
		fields   []string
		cur      strings.Builder
		inQuotes bool
		quoted   bool // the current field started with a quote
		n        int
	)
	for {
		r, err := rr.next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, io.EOF
			}
			if inQuotes {
				return nil, errors.New("a quoted field is not closed")
			}
			return append(fields, cur.String()), nil
		}
		if err != nil {
			return nil, err
		}
		if n++; n > maxHeader {
			return nil, fmt.Errorf("no line end within the first %d bytes", maxHeader)
		}
		if inQuotes {
			if r != quote {
				cur.WriteRune(r)
				continue
			}
			r2, err := rr.next()
			if err == nil && r2 == quote {
				cur.WriteRune(quote)
				continue
			}
			if err == nil {
				rr.unread()
			}
			inQuotes = false
			continue
		}
		switch {
		case r == quote && cur.Len() == 0 && !quoted:
			inQuotes, quoted = true, true
		case r == delim:
			fields = append(fields, cur.String())
			cur.Reset()
			quoted = false
		case r == '\n':
			return append(fields, cur.String()), nil
		case r == '\r':
			r2, err := rr.next()
			if err == nil && r2 == '\n' || errors.Is(err, io.EOF) {
				return append(fields, cur.String()), nil
			}
			if err == nil {
				rr.unread()
			}
			cur.WriteRune(r)
		default:
			cur.WriteRune(r)
		}
	}
}

// cp1252 maps windows-1252 bytes 0x80..0x9F; undefined bytes keep their latin-1 meaning.
var cp1252 = [32]rune{
	'\u20AC', '\u0081', '\u201A', '\u0192', '\u201E', '\u2026', '\u2020', '\u2021',
	'\u02C6', '\u2030', '\u0160', '\u2039', '\u0152', '\u008D', '\u017D', '\u008F',
	'\u0090', '\u2018', '\u2019', '\u201C', '\u201D', '\u2022', '\u2013', '\u2014',
	'\u02DC', '\u2122', '\u0161', '\u203A', '\u0153', '\u009D', '\u017E', '\u0178',
}
