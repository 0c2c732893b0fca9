package catalog

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// DefaultSampleAbove is the row count above which statistics are taken on an even sample.
// Profiling keeps 8 bytes per value of the columns in progress (sorted in place), so this
// bounds memory to about 8 B × rows × workers.
const DefaultSampleAbove = 10_000_000

// Options tune ProfileParquet.
type Options struct {
	// SampleAbove: tables with more rows are profiled on every k-th row, so that about this
	// many rows are read (the profile says sampled). 0 means DefaultSampleAbove; < 0 never samples.
	SampleAbove int64
	// Workers is how many columns are profiled at once; 0 means GOMAXPROCS.
	Workers int
	// PrimaryKey names the key columns: they are flagged and duplicate keys are counted.
	PrimaryKey []string
}

const batchRows = 64 << 10

// ProfileParquet profiles a Parquet file, or a folder of Parquet files (a partitioned table,
// read as one table with union_by_name semantics: a column missing from a file is null there),
// over all rows. Columns are read one at a time, straight from the columnar file, so memory
// grows with the rows of a column, never with the whole table. The result has the statistics
// only; Enrich adds what the catalogue and the sync state know.
func ProfileParquet(ctx context.Context, path string, opt Options) (*TableProfile, error) {
	start := time.Now()
	t, err := openTable(path)
	if err != nil {
		return nil, err
	}
	defer t.close()

	p := &TableProfile{RowCount: t.rows, ColumnCount: len(t.cols), Files: len(t.files), VariableTypes: map[string]int{}}
	for _, f := range t.files {
		p.FileSizeMB += Float(f.size)
	}
	p.FileSizeMB = F(float64(p.FileSizeMB) / (1 << 20))
	stride := int64(1)
	limit := opt.SampleAbove
	if limit == 0 {
		limit = DefaultSampleAbove
	}
	if limit > 0 && t.rows > limit {
		stride = ceilDiv(t.rows, limit)
		p.Sampled = true
		p.SampledRows = ceilDiv(t.rows, stride)
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	seed := maphash.MakeSeed()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.Columns = make([]ColumnProfile, len(t.cols))
	firsts := make([][]*string, len(t.cols))
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		jobs   = make(chan int)
		pkJob  = len(opt.PrimaryKey) > 1
		dupKey int64
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scr := &scratch{}
			for c := range jobs {
				var err error
				if c < 0 {
					dupKey, err = t.distinctKeys(ctx, opt.PrimaryKey, stride, seed, scr)
				} else {
					var a *accum
					if a, err = t.readColumn(ctx, c, stride, seed, scr); err == nil {
						firsts[c] = a.first
						p.Columns[c] = a.result(t.cols[c].name)
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
	send := func(c int) bool {
		select {
		case jobs <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	ok := !pkJob || send(-1)
	for c := range t.cols {
		if !ok || !send(c) {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	working := t.rows
	if p.Sampled {
		working = p.SampledRows
	}
	pk := map[string]bool{}
	for _, k := range opt.PrimaryKey {
		pk[k] = true
	}
	var completeness float64
	for i := range p.Columns {
		c := &p.Columns[i]
		c.IsPrimaryKey = pk[c.Name]
		if c.IsPrimaryKey && len(opt.PrimaryKey) == 1 {
			dupKey = c.UniqueCount
		}
		completeness += float64(c.CompletenessPct)
		p.MissingCells += c.NullCount
		p.VariableTypes[c.TypeCategory]++
		for _, a := range c.Alerts {
			p.Alerts = append(p.Alerts, TableAlert{Column: c.Name, Type: a.Type, Message: a.Message})
		}
		if p.DateRange == nil && c.DateStats != nil {
			p.DateRange = &DateRange{Column: c.Name, Earliest: c.DateStats.Earliest, Latest: c.DateStats.Latest}
		}
	}
	if len(opt.PrimaryKey) > 0 && len(t.colIndexes(opt.PrimaryKey)) == len(opt.PrimaryKey) {
		p.DuplicateRows = working - dupKey
	}
	if len(p.Columns) > 0 {
		p.AvgCompleteness = F(completeness / float64(len(p.Columns)))
	}
	if cells := working * int64(len(p.Columns)); cells > 0 {
		p.MissingCellsPct = F(100 * float64(p.MissingCells) / float64(cells))
	}
	if p.Alerts == nil {
		p.Alerts = []TableAlert{}
	}
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	p.SampleRows = []SampleRow{}
	for r := 0; r < sampleRows && int64(r) < t.rows; r++ {
		row := SampleRow{Columns: names, Values: make([]*string, len(names))}
		for c := range names {
			if r < len(firsts[c]) {
				row.Values[c] = firsts[c][r]
			}
		}
		p.SampleRows = append(p.SampleRows, row)
	}
	p.ProfiledAt = time.Now().UTC()
	p.ProfileSeconds = F(time.Since(start).Seconds())
	return p, nil
}

// table is a table's Parquet files and the union of their columns.
type table struct {
	files []*pfile
	cols  []column
	rows  int64
}

type pfile struct {
	path   string
	size   int64
	rows   int64
	pr     *file.Reader
	fr     *pqarrow.FileReader
	fields map[string]int // column name -> field index
	types  map[string]colType
}

type column struct {
	name string
	typ  colType
}

// ParquetFiles lists a table's files: the file itself, or the *.parquet files of a partition
// folder (hidden files, such as temp files being written, are not part of the table).
func ParquetFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".parquet") && !strings.HasPrefix(e.Name(), ".") {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no Parquet files: %w", path, os.ErrNotExist)
	}
	slices.Sort(files)
	return files, nil
}

func openTable(path string) (*table, error) {
	paths, err := ParquetFiles(path)
	if err != nil {
		return nil, err
	}
	t := &table{}
	types := map[string][]colType{}
	for _, p := range paths {
		f, err := openFile(p)
		if err != nil {
			t.close()
			return nil, err
		}
		t.files = append(t.files, f)
		t.rows += f.rows
		sc, _ := f.fr.Schema()
		for _, fld := range sc.Fields() {
			if _, ok := types[fld.Name]; !ok {
				t.cols = append(t.cols, column{name: fld.Name})
			}
			types[fld.Name] = append(types[fld.Name], f.types[fld.Name])
		}
	}
	for i := range t.cols {
		t.cols[i].typ = unionType(types[t.cols[i].name])
	}
	return t, nil
}

func openFile(path string) (*pfile, error) {
	pr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.DefaultAllocator)
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sc, err := fr.Schema()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f := &pfile{path: path, rows: pr.NumRows(), pr: pr, fr: fr, fields: map[string]int{}, types: map[string]colType{}}
	if fi, err := os.Stat(path); err == nil {
		f.size = fi.Size()
	}
	for i, fld := range sc.Fields() {
		f.fields[fld.Name] = i
		f.types[fld.Name] = typeOf(fld.Type)
	}
	return f, nil
}

func (t *table) close() {
	for _, f := range t.files {
		f.pr.Close()
	}
}

// colIndexes returns the indexes of the columns of names that the table has.
func (t *table) colIndexes(names []string) []int {
	var idx []int
	for _, n := range names {
		for i, c := range t.cols {
			if c.name == n {
				idx = append(idx, i)
			}
		}
	}
	return idx
}

// scan calls fn with each batch of column c in every file (in order), or with a nil array for
// a file without the column; base is the global index of the batch's first row.
func (t *table) scan(ctx context.Context, c int, fn func(arr arrow.Array, from colType, base, n int64)) error {
	name := t.cols[c].name
	var base int64
	for _, f := range t.files {
		idx, ok := f.fields[name]
		if !ok {
			fn(nil, colType{}, base, f.rows)
			base += f.rows
			continue
		}
		cr, err := f.fr.GetColumn(ctx, idx)
		if err != nil {
			return fmt.Errorf("%s: column %s: %w", f.path, name, err)
		}
		for {
			if err := ctx.Err(); err != nil {
				cr.Release()
				return err
			}
			ch, err := cr.NextBatch(batchRows)
			if err != nil {
				cr.Release()
				return fmt.Errorf("%s: column %s: %w", f.path, name, err)
			}
			if ch.Len() == 0 {
				ch.Release()
				break
			}
			for _, arr := range ch.Chunks() {
				fn(arr, f.types[name], base, int64(arr.Len()))
				base += int64(arr.Len())
			}
			ch.Release()
		}
		cr.Release()
	}
	return nil
}

func (t *table) readColumn(ctx context.Context, c int, stride int64, seed maphash.Seed, scr *scratch) (*accum, error) {
	a := newAccum(t.cols[c].typ, stride, ceilDiv(t.rows, stride), seed, scr)
	err := t.scan(ctx, c, func(arr arrow.Array, from colType, base, n int64) {
		if arr == nil {
			a.skip(base, n)
			return
		}
		a.feed(arr, from, base)
	})
	return a, err
}

// distinctKeys counts the distinct combinations of the key columns (a combination with nulls
// counts too, like count(DISTINCT (a, b)) in DuckDB): each row's key is a hash folded over
// the columns, read one column at a time.
func (t *table) distinctKeys(ctx context.Context, names []string, stride int64, seed maphash.Seed, scr *scratch) (int64, error) {
	cols := t.colIndexes(names)
	if len(cols) != len(names) {
		return 0, nil // a key column is missing: nothing to count
	}
	rows := t.rows
	if stride > 1 {
		rows = ceilDiv(t.rows, stride)
	}
	h := make([]uint64, rows)
	for _, c := range cols {
		u := t.cols[c].typ
		err := t.scan(ctx, c, func(arr arrow.Array, from colType, base, n int64) {
			for i := range n {
				r := base + i
				if stride > 1 && r%stride != 0 {
					continue
				}
				k := uint64(0x9e3779b97f4a7c15) // null
				if arr != nil && !arr.IsNull(int(i)) {
					k, _ = value(arr, int(i), u, seed)
				}
				j := r / stride
				h[j] = maphash.Comparable(seed, [2]uint64{h[j], k})
			}
		})
		if err != nil {
			return 0, err
		}
	}
	radixSort(h, &scr.buf)
	return distinct(h), nil
}
