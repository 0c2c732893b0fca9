package jira_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
)

// BenchmarkMonthRewrite puts 200 changed issues into a month of 20,000, side by side: DuckDB
// rewriting the month file with COPY (the reference tool), our writer re-encoding the whole
// month, and our writer with its cache, which copies the row groups the change leaves alone.
// The changes go to the issues of the month's tail, as Jira's edits mostly do.
func BenchmarkMonthRewrite(b *testing.B) {
	const month, seed, changed = "2025-01", 20_000, 200
	fake := jiratest.New()
	defer fake.Close()
	tr := jira.NewTransformer("acme.atlassian.net", nil, "")
	rowsOf := func(from, n, version int) (map[string]bool, jira.Rows) {
		replace, all := map[string]bool{}, jira.Rows{}
		for i := from; i < from+n; i++ {
			k := fmt.Sprintf("SUP-%d", i+1)
			is := fake.NewIssue(k, 100000+i, fmt.Sprintf("2025-01-%02dT10:00:00.000+0000", 1+i%28), jiratest.Shape{Comments: 2, Histories: 3})
			is["fields"].(map[string]any)["summary"] = fmt.Sprintf("v%d", version)
			is["changelog"] = map[string]any{"histories": is["changelog"]}
			rows, err := tr.Transform(is)
			if err != nil {
				b.Fatal(err)
			}
			for t, r := range rows {
				all[t] = append(all[t], r...)
			}
			replace[k] = true
		}
		return replace, all
	}
	_, seedRows := rowsOf(0, seed, 0)
	seedDir := func(b *testing.B) string {
		dir := b.TempDir()
		if _, err := jira.WritePartition(context.Background(), dir, tr.Tables(), month, nil, seedRows); err != nil {
			b.Fatal(err)
		}
		return dir
	}
	changes := make([]struct {
		replace map[string]bool
		rows    jira.Rows
	}, 8)
	for v := range changes {
		changes[v].replace, changes[v].rows = rowsOf(seed-changed*(1+v%4), changed, v+1)
	}

	b.Run("duckdb-copy", func(b *testing.B) {
		dir := seedDir(b)
		db := duck(b)
		for i := 0; b.Loop(); i++ {
			keys := make([]string, 0, changed)
			for k := range changes[i%len(changes)].replace {
				keys = append(keys, "'"+k+"'")
			}
			for _, table := range []string{"issues", "comments", "changelog"} {
				p := jira.PartitionPath(dir, table, month)
				// The changed issues' rows are dropped and appended again, as an upsert does.
				q := fmt.Sprintf("COPY (SELECT * FROM '%[1]s' WHERE issue_key NOT IN (%[2]s) UNION ALL SELECT * FROM '%[1]s' WHERE issue_key IN (%[2]s)) TO '%[1]s.tmp' (FORMAT parquet)", p, strings.Join(keys, ","))
				if _, err := db.Exec(q); err != nil {
					b.Fatal(err)
				}
				if err := os.Rename(p+".tmp", p); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("whole-month", func(b *testing.B) {
		dir := seedDir(b)
		for i := 0; b.Loop(); i++ {
			c := changes[i%len(changes)]
			if _, err := jira.WritePartition(context.Background(), dir, tr.Tables(), month, c.replace, c.rows); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("splice", func(b *testing.B) {
		w := &jira.PartitionWriter{Dir: seedDir(b), CacheBytes: 1 << 30}
		for i := 0; b.Loop(); i++ {
			c := changes[i%len(changes)]
			if _, err := w.Write(context.Background(), tr.Tables(), month, c.replace, c.rows); err != nil {
				b.Fatal(err)
			}
		}
	})
}
