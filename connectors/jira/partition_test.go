package jira_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/connectors/jira/jiratest"
)

// TestPartitionWriterCacheMatchesDisk: a writer that keeps months decoded in memory writes
// exactly what one reading every file from disk writes, skips tables an issue change leaves
// as they are, and notices a file replaced behind its back.
func TestPartitionWriterCacheMatchesDisk(t *testing.T) {
	fake := jiratest.New()
	defer fake.Close()
	tr := jira.NewTransformer("acme.atlassian.net", nil, "")
	ctx := context.Background()
	const month = "2025-01"
	version := map[string]int{}
	rowsOf := func(keys ...string) (map[string]bool, jira.Rows) {
		replace, all := map[string]bool{}, jira.Rows{}
		for _, k := range keys {
			replace[k] = true
			if version[k] < 0 {
				continue // deleted
			}
			is := fake.NewIssue(k, 1000+len(k), "2025-01-15T10:00:00.000+0000", jiratest.Shape{Comments: 2, Histories: 1 + version[k]})
			is["fields"].(map[string]any)["summary"] = fmt.Sprintf("%s v%d", k, version[k])
			is["changelog"] = map[string]any{"histories": is["changelog"]}
			rows, err := tr.Transform(is)
			if err != nil {
				t.Fatal(err)
			}
			for tb, r := range rows {
				all[tb] = append(all[tb], r...)
			}
		}
		return replace, all
	}
	plainDir, cachedDir := t.TempDir(), t.TempDir()
	// Small row groups, so that rewrites copy some and encode others.
	cached := &jira.PartitionWriter{Dir: cachedDir, CacheBytes: 1 << 30, RowGroupRows: 16}
	copied := 0
	db := duck(t)
	same := func(step string) {
		t.Helper()
		for _, table := range []string{"issues", "comments", "changelog"} {
			a, b := jira.PartitionPath(plainDir, table, month), jira.PartitionPath(cachedDir, table, month)
			var diff, rows int
			q := fmt.Sprintf("SELECT (SELECT count(*) FROM (SELECT * FROM '%[1]s' EXCEPT ALL SELECT * FROM '%[2]s')) + "+
				"(SELECT count(*) FROM (SELECT * FROM '%[2]s' EXCEPT ALL SELECT * FROM '%[1]s')), (SELECT count(*) FROM '%[2]s')", a, b)
			if err := db.QueryRow(q).Scan(&diff, &rows); err != nil {
				t.Fatalf("%s: %s: %v", step, table, err)
			}
			if diff != 0 || rows == 0 {
				t.Fatalf("%s: %s differs from the uncached writer's in %d rows (%d rows)", step, table, diff, rows)
			}
			// Arrow's own reader (the other implementation) reads every column of it too.
			f, err := file.OpenParquetFile(b, false)
			if err != nil {
				t.Fatalf("%s: %s: %v", step, table, err)
			}
			fr, _ := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
			tbl, err := fr.ReadTable(ctx)
			f.Close()
			if err != nil || tbl.NumRows() != int64(rows) {
				t.Fatalf("%s: %s read by arrow: %v", step, table, err)
			}
			tbl.Release()
		}
	}
	apply := func(step string, keys ...string) []jira.TableStats {
		t.Helper()
		replace, rows := rowsOf(keys...)
		if _, err := jira.WritePartition(ctx, plainDir, tr.Tables(), month, replace, rows); err != nil {
			t.Fatal(err)
		}
		stats, err := cached.Write(ctx, tr.Tables(), month, replace, rows)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range stats {
			copied += st.GroupsCopied
		}
		same(step)
		return stats
	}
	changed := func(stats []jira.TableStats) map[string]bool {
		out := map[string]bool{}
		for _, s := range stats {
			out[s.Table] = s.Changed
		}
		return out
	}
	var keys []string
	for i := range 40 {
		keys = append(keys, fmt.Sprintf("A-%d", i+1))
	}
	apply("seed", keys...)
	apply("seed again from the cache", keys[:5]...)

	// A summary change with a new changelog entry rewrites issues and changelog, not comments.
	version["A-3"], version["A-7"] = 1, 1
	info, _ := os.Stat(jira.PartitionPath(cachedDir, "comments", month))
	if c := changed(apply("edit", "A-3", "A-7")); !c["issues"] || !c["changelog"] || c["comments"] {
		t.Fatalf("an edit changed %v", c)
	}
	if now, _ := os.Stat(jira.PartitionPath(cachedDir, "comments", month)); !os.SameFile(info, now) || !now.ModTime().Equal(info.ModTime()) {
		t.Fatal("comments were rewritten though no comment changed")
	}
	// The same rows again change nothing.
	if c := changed(apply("unchanged", "A-3", "A-7")); c["issues"] || c["changelog"] || c["comments"] {
		t.Fatalf("identical rows changed %v", c)
	}
	version["A-9"] = -1
	apply("delete", "A-9", "A-10")
	apply("new issues", "B-1", "B-2", "A-11")

	// Another writer replaces a file: the cached copy is not used, no change is lost.
	version["A-12"] = 2
	replace, rows := rowsOf("A-12")
	for _, dir := range []string{plainDir, cachedDir} {
		if _, err := jira.WritePartition(ctx, dir, tr.Tables(), month, replace, rows); err != nil {
			t.Fatal(err)
		}
	}
	same("replaced behind the writer's back")
	version["A-13"]++
	apply("after the replacement", "A-13")

	// A restarted writer reads the month back and copies row groups from its first rewrite.
	cached = &jira.PartitionWriter{Dir: cachedDir, CacheBytes: 1 << 30, RowGroupRows: 16}
	version["A-20"]++
	first := 0
	for _, st := range apply("first rewrite after a restart", "A-20") {
		first += st.GroupsCopied
	}
	if first == 0 {
		t.Fatal("the first rewrite after a restart encoded every row group again")
	}

	// Many rewrites stay identical.
	for i := range 40 {
		k := keys[(i*7)%len(keys)]
		version[k]++
		apply(fmt.Sprintf("rewrite %d", i), k)
	}
	var groups int
	db.QueryRow("SELECT count(DISTINCT row_group_id) FROM parquet_metadata('" + jira.PartitionPath(cachedDir, "changelog", month) + "')").Scan(&groups)
	if copied == 0 || groups < 4 {
		t.Fatalf("row groups copied over all rewrites: %d; changelog row groups: %d", copied, groups)
	}
}
