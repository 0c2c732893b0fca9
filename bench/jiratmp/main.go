package main

import (
	"runtime"
	"runtime/pprof"
	"database/sql"
	"strings"
	_ "github.com/duckdb/duckdb-go/v2"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
)

var duckTest func(string, map[string]bool)

func main() {
	debug.SetGCPercent(400)
	fake := jiratest.New()
	defer fake.Close()
	dir, _ := os.MkdirTemp("", "jt")
	defer os.RemoveAll(dir)
	created := func(i int) string { return fmt.Sprintf("2025-01-%02dT%02d:00:00.000+0000", 1+i%28, i%24) }
	shape := jiratest.Shape{Comments: 2, Histories: 3}
	tr := jira.NewTransformer("acme.atlassian.net", nil, "")
	rows := jira.Rows{}
	for i := range 50000 {
		is := fake.NewIssue(fmt.Sprintf("SEED-%d", i+1), 100000+i, created(i), shape)
		is["changelog"] = map[string]any{"histories": is["changelog"]}
		r, _ := tr.Transform(is)
		for t, rr := range r {
			rows[t] = append(rows[t], rr...)
		}
	}
	jira.WritePartition(context.Background(), dir, tr.Tables(), "2025-01", nil, rows)
	replace := map[string]bool{}
	add := jira.Rows{}
	for i := range 300 {
		k := fmt.Sprintf("SEED-%d", i*97+1)
		replace[k] = true
		is := fake.NewIssue(k, 100000+i*97, created(i*97), shape)
		is["changelog"] = map[string]any{"histories": is["changelog"]}
		r, _ := tr.Transform(is)
		for t, rr := range r {
			add[t] = append(add[t], rr...)
		}
	}
	for _, t := range tr.Tables() {
		fi, err := os.Stat(jira.PartitionPath(dir, t.Name, "2025-01"))
		size := int64(0)
		if err == nil {
			size = fi.Size()
		}
		for round := 0; round < 3; round++ {
			start := time.Now()
			_, err := jira.WritePartition(context.Background(), dir, []jira.Table{t}, "2025-01", replace, add)
			if err != nil {
				panic(err)
			}
			fmt.Printf("%-14s %8d bytes rows=%d  %v\n", t.Name, size, len(rows[t.Name]), time.Since(start).Round(time.Millisecond))
		}
	}
	f, _ := os.Create("/tmp/wt.pprof")
	pprof.StartCPUProfile(f)
	for range 5 {
		jira.WritePartition(context.Background(), dir, tr.Tables(), "2025-01", replace, add)
	}
	pprof.StopCPUProfile()
	pw := &jira.PartitionWriter{Dir: dir, CacheBytes: 1 << 30}
	for i := range 6 {
		var ms runtime.MemStats
		for _, r := range add["issues"] {
			r[3] = fmt.Sprintf("v%d", i)
		}
		for _, r := range add["changelog"] {
			r[7] = fmt.Sprintf("v%d", i)
		}
		start := time.Now()
		pw.Write(context.Background(), tr.Tables(), "2025-01", replace, add)
		runtime.ReadMemStats(&ms)
		fmt.Println("cached writer, all six:", i, time.Since(start).Round(time.Millisecond), "heap MB", ms.HeapAlloc>>20)
	}
}

func init() {
	duckTest = func(dir string, replace map[string]bool) {
		db, err := sql.Open("duckdb", "")
		if err != nil {
			panic(err)
		}
		defer db.Close()
		var keys []string
		for k := range replace {
			keys = append(keys, "'"+k+"'")
		}
		list := strings.Join(keys, ",")
		for _, t := range []string{"issues", "comments", "changelog"} {
			for round := 0; round < 3; round++ {
				start := time.Now()
				src := jira.PartitionPath(dir, t, "2025-01")
				q := fmt.Sprintf("COPY (SELECT * FROM read_parquet('%s') WHERE issue_key NOT IN (%s) UNION ALL SELECT * FROM read_parquet('%s') WHERE issue_key IN (%s)) TO '%s.duck' (FORMAT parquet, COMPRESSION snappy)", src, list, src, list, src)
				if _, err := db.Exec(q); err != nil {
					panic(err)
				}
				fi, _ := os.Stat(src + ".duck")
				fmt.Printf("duckdb %-10s %v  %d bytes\n", t, time.Since(start).Round(time.Millisecond), fi.Size())
			}
		}
	}
}
