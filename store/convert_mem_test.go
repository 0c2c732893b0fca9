package store

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestConvertMemoryIsBounded converts a CSV larger than the heap bound and samples the Go heap
// while it runs: the converter streams, so its heap does not grow with the input.
func TestConvertMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and converts a 200 MB CSV")
	}
	const size = 200 << 20
	const bound = 128 << 20
	dir := t.TempDir()
	in := filepath.Join(dir, "big.csv")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("id,customer,amount,day,at,status,email,note\n")
	var b []byte
	var rowsWritten int64
	for written := 0; written < size; rowsWritten++ {
		i := rowsWritten
		b = strconv.AppendInt(b[:0], i, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, i*7919%100003, 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, float64(i%100000)/100, 'f', 2, 64)
		b = append(b, ",2024-01-"...)
		b = strconv.AppendInt(b, 10+i%18, 10)
		b = append(b, ",2024-02-03 04:05:"...)
		b = strconv.AppendInt(b, 10+i%50, 10)
		b = append(b, ",status"...)
		b = strconv.AppendInt(b, i%5, 10)
		b = append(b, ",user"...)
		b = strconv.AppendInt(b, i*31, 10)
		b = append(b, `@example.com,"a note, with a comma and some words to make it longer"`+"\n"...)
		w.Write(b)
		written += len(b)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	out := filepath.Join(dir, "big.parquet")
	rep, err := ConvertCSV(context.Background(), []string{in}, ConvertOptions{Format: header}, out)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows, %d MB in, %d MB out, peak heap in use %d MB", rep.Rows, rep.InputBytes>>20, rep.OutputBytes>>20, peak.Load()>>20)
	if rep.Rows != rowsWritten {
		t.Errorf("rows %d, want %d", rep.Rows, rowsWritten)
	}
	if peak.Load() > bound {
		t.Errorf("peak heap in use %d MB, want at most %d MB for a %d MB input", peak.Load()>>20, bound>>20, size>>20)
	}
	equalRows(t, rows(t, duck(t), "SELECT count(*), max(id), count(DISTINCT status) FROM read_parquet(?)", out),
		[]string{strconv.FormatInt(rowsWritten, 10) + "|" + strconv.FormatInt(rowsWritten-1, 10) + "|5"})
}
