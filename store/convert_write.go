package store

import (
	"context"
	"encoding/base64"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/klauspost/compress/s2"
)

// fastSnappy is arrow's snappy codec with the standard encoder instead of the "better" one,
// which costs twice the CPU for a few percent of size. Both write plain snappy blocks.
type fastSnappy struct{ compress.Codec }

func (c fastSnappy) Encode(dst, src []byte) []byte { return s2.EncodeSnappy(dst, src) }

func (c fastSnappy) EncodeLevel(dst, src []byte, _ int) []byte { return s2.EncodeSnappy(dst, src) }

func init() {
	// The codec registry is arrow's process-wide table; init runs before any writer exists.
	if c, err := compress.GetCodec(compress.Codecs.Snappy); err == nil {
		compress.RegisterCodec(compress.Codecs.Snappy, fastSnappy{c})
	}
}

// parquetWriter writes flat, nullable Arrow columns as Parquet row groups. A row group is
// buffered in memory and its columns are encoded and compressed on several goroutines, then
// written out in order: pqarrow's FileWriter encodes one column after another on one core.
type parquetWriter struct {
	fw      *file.Writer
	workers int
	ctxs    []context.Context // one arrow write context per worker: they hold scratch buffers
	defs    [][]int16         // per column definition levels of the row group
	levels  [][]int16         // per column level buffers (1 = value, 0 = null), reused
	ones    []int16           // the levels of a column without nulls
}

func newParquetWriter(w io.Writer, schema *arrow.Schema, props *parquet.WriterProperties) (*parquetWriter, error) {
	arrProps := pqarrow.NewArrowWriterProperties()
	pqschema, err := pqarrow.ToParquet(schema, props, arrProps)
	if err != nil {
		return nil, err
	}
	meta := make(metadata.KeyValueMetadata, 0)
	md := schema.Metadata()
	for i := range md.Len() {
		meta.Append(md.Keys()[i], md.Values()[i])
	}
	// Arrow readers restore the exact Arrow types (e.g. the UTC zone) from this.
	meta.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(schema, memory.DefaultAllocator)))
	fw, err := file.NewParquetWriterWithError(w, pqschema.Root(), file.WithWriterProps(props), file.WithWriteMetadata(meta))
	if err != nil {
		return nil, err
	}
	p := &parquetWriter{fw: fw, workers: max(1, runtime.GOMAXPROCS(0)), defs: make([][]int16, schema.NumFields()), levels: make([][]int16, schema.NumFields())}
	for range p.workers {
		p.ctxs = append(p.ctxs, pqarrow.NewArrowWriteContext(context.Background(), &arrProps))
	}
	return p, nil
}

// write appends one row group holding cols, which all have n rows.
func (p *parquetWriter) write(cols []arrow.Array, n int) error {
	if cap(p.ones) < n {
		p.ones = make([]int16, n)
		for i := range p.ones {
			p.ones[i] = 1
		}
	}
	for i, c := range cols {
		if c.NullN() == 0 {
			p.defs[i] = p.ones[:n]
			continue
		}
		d := p.levels[i]
		if cap(d) < n {
			d = make([]int16, n)
			p.levels[i] = d
		}
		d = d[:n]
		for j := range d {
			if c.IsValid(j) {
				d[j] = 1
			} else {
				d[j] = 0
			}
		}
		p.defs[i] = d
	}
	rgw, err := p.fw.AppendBufferedRowGroupChecked()
	if err != nil {
		return err
	}
	var (
		next int32 = -1
		wg   sync.WaitGroup
		errs = make([]error, p.workers)
	)
	for w := range p.workers {
		wg.Go(func() {
			for {
				i := int(atomic.AddInt32(&next, 1))
				if i >= len(cols) || errs[w] != nil {
					return
				}
				cw, err := rgw.Column(i)
				if err == nil {
					err = pqarrow.WriteArrowToColumn(p.ctxs[w], cw, cols[i], p.defs[i], nil, true)
				}
				errs[w] = err
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return rgw.Close()
}

func (p *parquetWriter) close() error { return p.fw.Close() }
