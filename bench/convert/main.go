// Command convert benchmarks the CSV to Parquet converter against DuckDB's COPY on the same
// generated file. Each converter runs in its own child process so that its peak RSS can be read
// from the child's rusage; the parent then checks with DuckDB that both files hold the same rows.
//
//	convert run [-size 1GB] [-dir DIR] [-declared]   generate (if missing), convert twice, compare
//	convert gen -size N -out F                        only generate
//	convert ours -in F -out O [-declared]             child: our converter
//	convert duckdb -in F -out O                       child: DuckDB COPY
package main

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"github.com/ai-data-analyst/analyst/bench/benchutil"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/store"
	_ "github.com/duckdb/duckdb-go/v2"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: convert run|gen|ours|duckdb [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "run":
		err = run(args)
	case "gen":
		fs := flag.NewFlagSet("gen", flag.ExitOnError)
		size := fs.String("size", "1GB", "approximate size")
		out := fs.String("out", "bench.csv", "output file")
		fs.Parse(args)
		var n int64
		if n, err = benchutil.ParseSize(*size); err == nil {
			err = generate(*out, n)
		}
	case "ours":
		err = ours(args)
	case "duckdb":
		fs := flag.NewFlagSet("duckdb", flag.ExitOnError)
		in := fs.String("in", "", "CSV file")
		out := fs.String("out", "", "Parquet file")
		fs.Parse(args)
		err = duckCopy(*in, *out)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "convert:", err)
		os.Exit(1)
	}
}

// ours runs our converter (in a child process of run).
func ours(args []string) error {
	fs := flag.NewFlagSet("ours", flag.ExitOnError)
	in := fs.String("in", "", "CSV file")
	out := fs.String("out", "", "Parquet file")
	declared := fs.Bool("declared", false, "declare the column types instead of inferring them")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile")
	rowGroup := fs.Int("rowgroup", 0, "rows per row group (0: the converter's default)")
	memprofile := fs.String("memprofile", "", "write an allocation profile")
	fs.Parse(args)
	if *memprofile != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, err := os.Create(*memprofile); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	opts := store.ConvertOptions{Format: store.CSVFormat{Header: true}, RowGroupRows: *rowGroup}
	if *declared {
		opts.Columns = columns
	}
	_, err := store.ConvertCSV(context.Background(), []string{*in}, opts, *out)
	return err
}

// columns are the generated file's columns with the types a source would declare.
var columns = []store.Column{
	{Name: "id", Type: "INTEGER"}, {Name: "customer_id", Type: "INTEGER"}, {Name: "quantity", Type: "INTEGER"},
	{Name: "price", Type: "NUMERIC"}, {Name: "discount", Type: "NUMERIC"}, {Name: "amount", Type: "NUMERIC"},
	{Name: "is_active", Type: "BOOLEAN"}, {Name: "created_date", Type: "DATE"}, {Name: "created_at", Type: "TIMESTAMP"},
	{Name: "updated_at", Type: "TIMESTAMP"}, {Name: "country", Type: "STRING"}, {Name: "status", Type: "STRING"},
	{Name: "category", Type: "STRING"}, {Name: "email", Type: "STRING"}, {Name: "name", Type: "STRING"},
	{Name: "description", Type: "STRING"}, {Name: "sku", Type: "STRING"}, {Name: "zip", Type: "STRING"},
	{Name: "score", Type: "NUMERIC"}, {Name: "token", Type: "STRING"},
}

var (
	countries = strings.Fields("CZ SK DE AT PL HU US GB FR IT ES NL BE CH SE NO DK FI IE PT")
	statuses  = strings.Fields("new paid shipped delivered cancelled")
	firsts    = strings.Fields("Anna Petr Jana Martin Eva Tomas Lucie Jakub Tereza Ondrej Klara Adam")
	lasts     = strings.Fields("Novak Svoboda Dvorak Cerny Prochazka Kucera Vesely Horak Nemec Marek")
	words     = strings.Fields("fast reliable blue large small premium basic eco smart classic modern compact")
)

// generate writes a deterministic 20-column CSV of about size bytes.
func generate(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = c.Name
	}
	w.WriteString(strings.Join(names, ",") + "\n")
	var written int64
	var b []byte
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for id := int64(1); written < size; id++ {
		b = b[:0]
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, 1+r.Int64N(1_000_000), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, 1+r.Int64N(100), 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, float64(r.IntN(100000))/100, 'f', 2, 64)
		b = append(b, ',')
		if r.IntN(4) != 0 {
			b = strconv.AppendFloat(b, float64(r.IntN(50))/100, 'f', 2, 64)
		}
		b = append(b, ',')
		b = strconv.AppendFloat(b, float64(r.Int64N(100_000_000))/10000, 'f', 4, 64)
		b = append(b, ',')
		b = strconv.AppendBool(b, r.IntN(3) != 0)
		b = append(b, ',')
		ts := time.Unix(base+r.Int64N(5*365*86400), 0).UTC()
		b = ts.AppendFormat(b, "2006-01-02")
		b = append(b, ',')
		b = ts.AppendFormat(b, "2006-01-02 15:04:05")
		b = append(b, ',')
		b = ts.Add(time.Duration(r.Int64N(86400e6))*time.Microsecond).AppendFormat(b, "2006-01-02 15:04:05.000000")
		b = append(b, ',')
		b = append(b, countries[r.IntN(len(countries))]...)
		b = append(b, ',')
		b = append(b, statuses[r.IntN(len(statuses))]...)
		b = append(b, ",cat_"...)
		b = strconv.AppendInt(b, r.Int64N(100), 10)
		b = append(b, ",user"...)
		b = strconv.AppendInt(b, r.Int64N(10_000_000), 10)
		b = append(b, "@example.com,"...)
		b = append(b, firsts[r.IntN(len(firsts))]...)
		b = append(b, ' ')
		b = append(b, lasts[r.IntN(len(lasts))]...)
		b = append(b, ",\""...)
		for i := 3 + r.IntN(6); i > 0; i-- {
			b = append(b, words[r.IntN(len(words))]...)
			switch r.IntN(8) {
			case 0:
				b = append(b, ", "...)
			case 1:
				b = append(b, ` ""quoted"" `...)
			default:
				b = append(b, ' ')
			}
		}
		b = append(b, "\",SKU-"...)
		b = appendPadded(b, r.Int64N(1_000_000), 6)
		b = append(b, ',')
		b = appendPadded(b, r.Int64N(100_000), 5)
		b = append(b, ',')
		b = strconv.AppendFloat(b, r.Float64(), 'f', 6, 64)
		b = append(b, ',')
		b = strconv.AppendUint(b, r.Uint64(), 16)
		b = append(b, '\n')
		w.Write(b)
		written += int64(len(b))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func appendPadded(b []byte, v int64, width int) []byte {
	s := strconv.FormatInt(v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func duckCopy(in, out string) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(fmt.Sprintf("COPY (SELECT * FROM read_csv('%s')) TO '%s' (FORMAT parquet)", in, out))
	return err
}

// result is one child's measurements.
// result is one converter's measured run.
type result struct {
	name string
	benchutil.Measurement
}

func child(name string, args ...string) (result, error) {
	m, err := benchutil.Child(args...)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", name, err)
	}
	return result{name: name, Measurement: m}, nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	size := fs.String("size", "1GB", "CSV size to generate")
	dir := fs.String("dir", os.TempDir(), "work folder")
	declared := fs.Bool("declared", false, "also run our converter with declared types")
	fs.Parse(args)
	n, err := benchutil.ParseSize(*size)
	if err != nil {
		return err
	}
	in := filepath.Join(*dir, fmt.Sprintf("bench-%s.csv", strings.ToLower(*size)))
	if st, err := os.Stat(in); err != nil || st.Size() < n {
		fmt.Printf("generating %s ...\n", in)
		if err := generate(in, n); err != nil {
			return err
		}
	}
	st, err := os.Stat(in)
	if err != nil {
		return err
	}
	mb := float64(st.Size()) / (1 << 20)
	oursOut, duckOut := filepath.Join(*dir, "bench-ours.parquet"), filepath.Join(*dir, "bench-duckdb.parquet")
	duck, err := child("duckdb", "duckdb", "-in", in, "-out", duckOut)
	if err != nil {
		return err
	}
	ours, err := child("ours (inferred types)", "ours", "-in", in, "-out", oursOut)
	if err != nil {
		return err
	}
	results := []result{duck, ours}
	if *declared {
		decl, err := child("ours (declared types)", "ours", "-declared", "-in", in, "-out", oursOut+".declared")
		if err != nil {
			return err
		}
		results = append(results, decl)
		defer os.Remove(oursOut + ".declared")
	}
	fmt.Printf("input: %.0f MB CSV, 20 columns\n", mb)
	fmt.Printf("%-24s %8s %10s %8s %10s %10s\n", "converter", "seconds", "MB/s", "CPU s", "peak RSS", "out MB")
	for i, r := range results {
		out := []string{duckOut, oursOut, oursOut + ".declared"}[i]
		osz := 0.0
		if st, err := os.Stat(out); err == nil {
			osz = float64(st.Size()) / (1 << 20)
		}
		fmt.Printf("%-24s %8.2f %10.1f %8.2f %8.0fMB %10.1f\n", r.name, r.Seconds, mb/r.Seconds, r.CPU, r.RSSMB, osz)
	}
	for _, r := range results[1:] {
		fmt.Printf("%s vs DuckDB: throughput %.2fx, CPU %.2fx, peak RSS %.2fx\n", r.name, duck.Seconds/r.Seconds, r.CPU/duck.CPU, r.RSSMB/duck.RSSMB)
	}
	return verify(duckOut, oursOut)
}

// verify checks with DuckDB that both files hold the same rows.
func verify(a, b string) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	// zip has leading zeros that DuckDB's sniffer drops (it reads it as a number), so it is
	// compared as a number.
	const q = `SELECT (count(*), sum(id), sum(customer_id), round(sum(price), 2), sum(zip::BIGINT),
		sum(hash(country || status || email || name || description || sku || token)),
		sum(epoch(created_at)), sum(epoch_us(updated_at)), count_if(is_active) + count(discount),
		sum(epoch(created_date::TIMESTAMP)))::VARCHAR, count(*) FROM read_parquet(?)`
	var sums [2]string
	var count int64
	for i, f := range []string{a, b} {
		if err := db.QueryRow(q, f).Scan(&sums[i], &count); err != nil {
			return fmt.Errorf("checksum %s: %w", f, err)
		}
	}
	if sums[0] != sums[1] {
		return fmt.Errorf("files differ:\n duckdb %s\n ours   %s", sums[0], sums[1])
	}
	fmt.Printf("verified: same %d rows and checksums in both files\n", count)
	return nil
}
