// Command profile benchmarks the catalog profiler against DuckDB's SUMMARIZE on the same
// generated Parquet file (5 M rows, 20 columns by default). Each side runs in its own child
// process, so that its peak RSS can be read from the child's rusage; rounds alternate the two
// sides and the median ratios are reported.
//
//	profile run [-rows 5000000] [-dir DIR] [-rounds 3]   generate (if missing), run both sides
//	profile gen -rows N -out F                           only generate
//	profile ours -in F                                   child: catalog.ProfileParquet
//	profile duckdb -in F                                 child: SUMMARIZE
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/ai-data-analyst/analyst/bench/benchutil"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/ai-data-analyst/analyst/catalog"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: profile run|gen|ours|duckdb [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "run":
		err = run(args)
	case "gen":
		fs := flag.NewFlagSet("gen", flag.ExitOnError)
		rows := fs.Int64("rows", 5_000_000, "rows")
		out := fs.String("out", "bench.parquet", "output file")
		fs.Parse(args)
		err = generate(*out, *rows)
	case "ours":
		err = ours(args)
	case "duckdb":
		fs := flag.NewFlagSet("duckdb", flag.ExitOnError)
		in := fs.String("in", "", "Parquet file")
		fs.Parse(args)
		err = summarize(*in)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func ours(args []string) error {
	fs := flag.NewFlagSet("ours", flag.ExitOnError)
	in := fs.String("in", "", "Parquet file or folder")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile")
	out := fs.String("json", "", "write the profile JSON here")
	fs.Parse(args)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	p, err := catalog.ProfileParquet(context.Background(), *in, catalog.Options{PrimaryKey: []string{"id"}})
	if err != nil {
		return err
	}
	if *out != "" {
		data, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*out, data, 0o644)
	}
	return nil
}

// summarize runs DuckDB's SUMMARIZE and reads every result row.
func summarize(in string) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query("SUMMARIZE SELECT * FROM read_parquet(?)", in)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
	}
	return rows.Err()
}

func child(args ...string) (benchutil.Measurement, error) { return benchutil.Child(args...) }

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	rows := fs.Int64("rows", 5_000_000, "rows of the generated file")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "analyst-bench-profile"), "work folder")
	rounds := fs.Int("rounds", 3, "rounds; each runs both sides, in alternating order")
	fs.Parse(args)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	in := filepath.Join(*dir, fmt.Sprintf("bench-%d.parquet", *rows))
	if _, err := os.Stat(in); err != nil {
		fmt.Printf("generating %s (%d rows, 20 columns)\n", in, *rows)
		start := time.Now()
		if err := generate(in, *rows); err != nil {
			return err
		}
		fmt.Printf("generated in %.1fs\n", time.Since(start).Seconds())
	}
	if fi, err := os.Stat(in); err == nil {
		fmt.Printf("input: %s, %.0f MB\n", in, float64(fi.Size())/(1<<20))
	}
	var timeRatios, rssRatios []float64
	for r := range *rounds {
		var ourRes, duckRes benchutil.Measurement
		var err error
		sides := []func() error{
			func() error { ourRes, err = child("ours", "-in", in); return err },
			func() error { duckRes, err = child("duckdb", "-in", in); return err },
		}
		if r%2 == 1 {
			slices.Reverse(sides)
		}
		for _, s := range sides {
			if err := s(); err != nil {
				return err
			}
		}
		tr, mr := ourRes.Seconds/duckRes.Seconds, ourRes.RSSMB/duckRes.RSSMB
		timeRatios, rssRatios = append(timeRatios, tr), append(rssRatios, mr)
		fmt.Printf("round %d: profiler %.2fs %.0f MB | SUMMARIZE %.2fs %.0f MB | time %.2fx, peak RSS %.2fx\n",
			r+1, ourRes.Seconds, ourRes.RSSMB, duckRes.Seconds, duckRes.RSSMB, tr, mr)
	}
	fmt.Printf("median over %d rounds: time %.2fx DuckDB SUMMARIZE, peak RSS %.2fx\n", *rounds, benchutil.Median(timeRatios), benchutil.Median(rssRatios))
	return nil
}

// generate writes a deterministic 20-column Parquet file with DuckDB: integers, decimals,
// doubles (some null), booleans, dates, timestamps with and without zone, and text from
// 5 to millions of distinct values.
func generate(out string, rows int64) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `CREATE MACRO h(i, k) AS (hash(i * k) % 9223372036854775807)::BIGINT`); err != nil {
		return err
	}
	tmp := out + ".tmp"
	q := fmt.Sprintf(`COPY (SELECT i AS id,
 (h(i,1) %% 1000000)::INTEGER AS customer_id,
 (1 + h(i,3) %% 100)::INTEGER AS quantity,
 ((h(i,5) %% 100000) / 100)::DECIMAL(12,2) AS price,
 CASE WHEN h(i,7) %% 4 = 0 THEN NULL ELSE ((h(i,7) %% 50) / 100)::DOUBLE END AS discount,
 (h(i,11) %% 100000000) / 10000.0 - 2000 AS amount,
 h(i,13) %% 3 <> 0 AS is_active,
 DATE '2020-01-01' + (h(i,17) %% 1826)::INTEGER AS created_date,
 TIMESTAMP '2020-01-01' + to_seconds(h(i,19) %% 157766400) AS created_at,
 TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_microseconds(h(i,23) %% 157766400000000) AS updated_at,
 (['CZ','SK','DE','AT','PL','HU','US','GB','FR','IT'])[1 + h(i,29) %% 10] AS country,
 (['new','paid','shipped','delivered','cancelled'])[1 + h(i,31) %% 5] AS status,
 'cat_' || (h(i,37) %% 100) AS category,
 'user' || (h(i,41) %% 10000000) || '@example.com' AS email,
 CASE WHEN h(i,43) %% 10 = 0 THEN NULL ELSE (['Anna','Petr','Jana','Martin'])[1 + h(i,47) %% 4] || ' ' || (['Novak','Svoboda','Dvorak'])[1 + h(i,53) %% 3] END AS name,
 'desc ' || (h(i,59) %% 1000) || ' words here' AS description,
 'SKU-' || lpad((h(i,61) %% 1000000)::VARCHAR, 6, '0') AS sku,
 (h(i,67) %% 1000)::SMALLINT AS zip,
 (h(i,71) %% 1000000) / 1000000.0 AS score,
 hex(hash(i * 73)) AS token
 FROM range(%d) t(i)) TO '%s' (FORMAT parquet)`, rows, tmp)
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
