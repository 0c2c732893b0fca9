package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/duckdb/duckdb-go/v2"
)

// The sync strategies put a staged Parquet file (converted from one extract) in place:
// full refresh replaces the table, incremental upserts into one file on the primary key,
// partitioned upserts into one file per period. Merges run in DuckDB with a memory limit and a
// temp directory, so tables larger than memory spill to disk instead of failing. Every file a
// reader can see is written next to its target and renamed over it, so a failed or interrupted
// merge leaves the previous version intact.

// NullPartition is the partition key of rows whose partition column is null (or not a date).
const NullPartition = "__null__"

// MergeStats counts what a merge did.
type MergeStats struct {
	Added     int64 // staged rows whose key was not in the table
	Updated   int64 // staged rows that replaced a row with the same key
	Unchanged int64 // rows of the table the staged data did not touch
	Deleted   int64 // rows removed because the source no longer has them (full refresh of partitions)
	Rows      int64 // rows in the table afterwards

	PartitionsWritten []string // partition keys rewritten
	PartitionsRemoved []string // partition keys whose file was removed
}

// Partitioning says how a table is split into files.
type Partitioning struct {
	Column      string // a DATE or TIMESTAMP column (strings are parsed)
	Granularity string // config.Month (YYYY_MM, default), config.Day (YYYY_MM_DD) or config.Year (YYYY)
}

func (p Partitioning) format() (string, error) {
	switch p.Granularity {
	case "", "month":
		return "%Y_%m", nil
	case "day":
		return "%Y_%m_%d", nil
	case "year":
		return "%Y", nil
	}
	return "", fmt.Errorf("unknown partition granularity %q (month, day or year)", p.Granularity)
}

// OpenEngine opens an in-memory DuckDB for merges. memLimit (e.g. "1GB"; "" = DuckDB's
// default of 80% of RAM) caps its memory; beyond it, it spills to tempDir. Times are UTC.
func OpenEngine(tempDir, memLimit string) (*sql.DB, error) {
	if err := os.MkdirAll(tempDir, 0o755); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("temp_directory", tempDir)
	if memLimit != "" {
		q.Set("memory_limit", memLimit)
	}
	conn, err := duckdb.NewConnector("?"+q.Encode(), func(c driver.ExecerContext) error {
		_, err := c.ExecContext(context.Background(), "SET TimeZone = 'UTC'", nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open DuckDB: %w", err)
	}
	db := sql.OpenDB(conn)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open DuckDB: %w", err)
	}
	return db, nil
}

// ApplyFullRefresh replaces target by staged with a rename. Both must be on one filesystem
// (the staging folder is under the data folder for this reason).
func ApplyFullRefresh(staged, target string) error {
	if err := PublishFile(staged, target); err != nil {
		return fmt.Errorf("full refresh of %s: %w", target, err)
	}
	return nil
}

// engine is what the merges need of DuckDB: a *sql.DB, or a *sql.Conn where temp tables live.
type engine interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// quoteIdent quotes a column name for DuckDB.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLit quotes a string literal (file paths) for DuckDB.
func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// parquetColumns lists the columns and DuckDB types of Parquet files (union by name).
func parquetColumns(ctx context.Context, db engine, files ...string) ([]string, map[string]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet("+fileList(files)+", union_by_name=true))")
	if err != nil {
		return nil, nil, fmt.Errorf("read schema of %s: %w", strings.Join(files, ", "), err)
	}
	defer rows.Close()
	var names []string
	types := map[string]string{}
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return nil, nil, err
		}
		names = append(names, n)
		types[n] = t
	}
	return names, types, rows.Err()
}

func fileList(files []string) string {
	q := make([]string, len(files))
	for i, f := range files {
		q[i] = quoteLit(f)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// checkKey fails when a primary key column is missing from a file.
func checkKey(pk []string, file string, types map[string]string) error {
	if len(pk) == 0 {
		return errors.New("a merge needs a primary key")
	}
	var missing []string
	for _, c := range pk {
		if _, ok := types[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s has no primary key column %s", file, strings.Join(missing, ", "))
	}
	return nil
}

// keyMatch is the join condition on the key; null key parts match each other, so a row with a
// null key part is still replaced by its newer version.
func keyMatch(pk []string, a, b string) string {
	parts := make([]string, len(pk))
	for i, c := range pk {
		parts[i] = fmt.Sprintf("%s.%s IS NOT DISTINCT FROM %s.%s", a, quoteIdent(c), b, quoteIdent(c))
	}
	return strings.Join(parts, " AND ")
}

// stagedRows is the staged file without duplicate keys: of several rows with one key, the last
// in the file is the newest and wins.
func stagedRows(staged string, pk []string) string {
	keys := make([]string, len(pk))
	for i, c := range pk {
		keys[i] = quoteIdent(c)
	}
	return fmt.Sprintf(`SELECT * EXCLUDE (file_row_number) FROM read_parquet(%s, file_row_number=true)
		QUALIFY row_number() OVER (PARTITION BY %s ORDER BY file_row_number DESC) = 1`, quoteLit(staged), strings.Join(keys, ", "))
}

// kvMetadata returns a COPY option that carries the staged file's footer key-values (e.g.
// table_id) into the merged file; the Arrow schema is left out, DuckDB writes its own types.
func kvMetadata(ctx context.Context, db engine, file string) (string, error) {
	rows, err := db.QueryContext(ctx, "SELECT decode(key), decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) <> 'ARROW:schema'", file)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var kv []string
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return "", err
		}
		kv = append(kv, quoteIdent(k)+": "+quoteLit(v))
	}
	if err := rows.Err(); err != nil || len(kv) == 0 {
		return "", err
	}
	return ", KV_METADATA {" + strings.Join(kv, ", ") + "}", nil
}

// copyTo writes the query's rows to a temp file next to target and returns its path and the
// row count; the caller renames or removes it.
func copyTo(ctx context.Context, db engine, query, target, kv string) (string, int64, error) {
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return "", 0, err
	}
	tmp := f.Name()
	f.Close()
	res, err := db.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet, COMPRESSION snappy%s)", query, quoteLit(tmp), kv))
	if err != nil {
		os.Remove(tmp)
		return "", 0, err
	}
	n, _ := res.RowsAffected()
	return tmp, n, nil
}

// UpsertFile merges staged into target on the primary key: a staged row replaces the target row
// with the same key, other target rows stay, new keys are added. Columns are united by name.
// Without a target, staged becomes the target.
func UpsertFile(ctx context.Context, db *sql.DB, staged, target string, pk []string) (*MergeStats, error) {
	_, stagedTypes, err := parquetColumns(ctx, db, staged)
	if err != nil {
		return nil, err
	}
	if err := checkKey(pk, staged, stagedTypes); err != nil {
		return nil, err
	}
	if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
		tmp, rows, err := copyTo(ctx, db, stagedRows(staged, pk), target, mustKV(ctx, db, staged))
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", target, err)
		}
		if err := PublishFile(tmp, target); err != nil {
			os.Remove(tmp)
			return nil, err
		}
		return &MergeStats{Added: rows, Rows: rows}, nil
	}
	_, targetTypes, err := parquetColumns(ctx, db, target)
	if err != nil {
		return nil, err
	}
	if err := checkKey(pk, target, targetTypes); err != nil {
		return nil, err
	}
	st := &MergeStats{}
	newRows := stagedRows(staged, pk)
	old := "SELECT * FROM read_parquet(" + quoteLit(target) + ")"
	// One pass over the key columns counts what the merge will do.
	err = db.QueryRowContext(ctx, fmt.Sprintf(`SELECT
			(SELECT count(*) FROM (%[1]s)),
			(SELECT count(*) FROM (%[1]s) s SEMI JOIN (%[2]s) o ON %[3]s),
			(SELECT count(*) FROM (%[2]s) o SEMI JOIN (%[1]s) s ON %[3]s),
			(SELECT count(*) FROM (%[2]s))`, newRows, old, keyMatch(pk, "s", "o"))).Scan(&st.Added, &st.Updated, &st.Deleted, &st.Unchanged)
	if err != nil {
		return nil, fmt.Errorf("merge %s into %s: %w", staged, target, err)
	}
	if st.Added == 0 { // nothing staged: the target stays as it is
		st.Rows = st.Unchanged
		return st, nil
	}
	st.Added -= st.Updated
	st.Unchanged -= st.Deleted // target rows replaced by staged ones are not unchanged
	st.Deleted = 0
	merged := fmt.Sprintf("SELECT o.* FROM (%s) o ANTI JOIN (%s) s ON %s UNION ALL BY NAME %s", old, newRows, keyMatch(pk, "o", "s"), newRows)
	tmp, rows, err := copyTo(ctx, db, merged, target, mustKV(ctx, db, staged))
	if err != nil {
		return nil, fmt.Errorf("merge %s into %s: %w", staged, target, err)
	}
	if err := PublishFile(tmp, target); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	st.Rows = rows
	slog.Debug("upserted", "target", target, "added", st.Added, "updated", st.Updated, "rows", st.Rows)
	return st, nil
}

// mustKV is kvMetadata that degrades to no metadata: losing a footer key is not worth failing a sync.
func mustKV(ctx context.Context, db engine, file string) string {
	kv, err := kvMetadata(ctx, db, file)
	if err != nil {
		slog.Warn("cannot read footer metadata", "file", file, "err", err)
	}
	return kv
}

// partitionFiles lists the partition keys and files of a partition folder (temp files, which
// start with a dot, are not partitions).
func partitionFiles(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".parquet") {
			continue
		}
		out[strings.TrimSuffix(name, ".parquet")] = filepath.Join(dir, name)
	}
	return out, nil
}

// partitionKey is the SQL expression of a row's partition key: the UTC date of the partition
// column formatted by the granularity, or NullPartition.
func partitionKey(p Partitioning, typ string) (string, error) {
	format, err := p.format()
	if err != nil {
		return "", err
	}
	col := quoteIdent(p.Column)
	var ts string
	switch {
	case typ == "DATE" || strings.HasPrefix(typ, "TIMESTAMP") && !strings.Contains(typ, "TIME ZONE"):
		ts = col
	case strings.Contains(typ, "TIME ZONE"):
		ts = col + "::TIMESTAMP" // the engine's zone is UTC
	default:
		ts = "TRY_CAST(" + col + " AS TIMESTAMP)"
	}
	return fmt.Sprintf("coalesce(strftime(%s, '%s'), '%s')", ts, format, NullPartition), nil
}

// UpsertPartitions merges staged into the partition folder dir (one <key>.parquet per period of
// the partition column). Each staged row replaces the row with its key wherever that row is, so
// a row whose partition value changed moves to its new partition. Rows whose partition value is
// null go to NullPartition. With fullRefresh the staged data is the whole table: partitions and
// rows it does not have are removed. Only partitions whose content changes are rewritten, each
// one atomically.
func UpsertPartitions(ctx context.Context, db *sql.DB, staged, dir string, p Partitioning, pk []string, fullRefresh bool) (*MergeStats, error) {
	_, stagedTypes, err := parquetColumns(ctx, db, staged)
	if err != nil {
		return nil, err
	}
	if len(pk) > 0 || !fullRefresh {
		if err := checkKey(pk, staged, stagedTypes); err != nil {
			return nil, err
		}
	}
	typ, ok := stagedTypes[p.Column]
	if !ok {
		return nil, fmt.Errorf("%s has no partition column %q", staged, p.Column)
	}
	keyExpr, err := partitionKey(p, typ)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	existing, err := partitionFiles(dir)
	if err != nil {
		return nil, err
	}
	kv := mustKV(ctx, db, staged)

	// The staged rows, deduplicated and keyed, go to a temp table sorted by partition, so each
	// partition's rows are read from a few blocks (DuckDB spills it beyond its memory limit).
	src := "SELECT * FROM read_parquet(" + quoteLit(staged) + ")"
	if len(pk) > 0 {
		src = stagedRows(staged, pk)
	}
	conn, err := db.Conn(ctx) // temp tables live in one connection
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS __staged")
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE __staged AS SELECT *, %s AS __partition FROM (%s) ORDER BY __partition", keyExpr, src)); err != nil {
		return nil, fmt.Errorf("read %s: %w", staged, err)
	}
	st := &MergeStats{}
	newKeys, err := countsBy(ctx, conn, "SELECT __partition, count(*) FROM __staged GROUP BY ALL")
	if err != nil {
		return nil, err
	}

	// Which partitions to rewrite, and which staged keys are already in the table.
	touched := map[string]bool{}
	for k := range newKeys {
		touched[k] = true
	}
	var oldRows int64
	if len(existing) > 0 {
		files := make([]string, 0, len(existing))
		for _, f := range existing {
			files = append(files, f)
		}
		sort.Strings(files)
		_, oldTypes, err := parquetColumns(ctx, db, files...)
		if err != nil {
			return nil, err
		}
		if len(pk) > 0 {
			if err := checkKey(pk, dir, oldTypes); err != nil {
				return nil, err
			}
		}
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+fileList(files)+", union_by_name=true)").Scan(&oldRows); err != nil {
			return nil, err
		}
		if fullRefresh {
			for k := range existing {
				touched[k] = true
			}
		}
		if len(pk) > 0 {
			// Partitions holding a staged key lose that row (it may have moved).
			keys := make([]string, len(pk))
			for i, c := range pk {
				keys[i] = quoteIdent(c)
			}
			q := fmt.Sprintf(`SELECT parse_filename(o.filename, true), count(*) FROM
				(SELECT %s, filename FROM read_parquet(%s, union_by_name=true, filename=true)) o
				SEMI JOIN __staged s ON %s GROUP BY ALL`, strings.Join(keys, ", "), fileList(files), keyMatch(pk, "o", "s"))
			updated, err := countsBy(ctx, conn, q)
			if err != nil {
				return nil, err
			}
			for k, n := range updated {
				touched[k] = true
				st.Updated += n
			}
		}
	}
	var stagedTotal int64
	for _, n := range newKeys {
		stagedTotal += n
	}
	if fullRefresh {
		st.Added, st.Deleted = stagedTotal-st.Updated, oldRows-st.Updated
	} else {
		st.Added, st.Unchanged = stagedTotal-st.Updated, oldRows-st.Updated
	}

	keys := make([]string, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		target := filepath.Join(dir, k+".parquet")
		old, hadFile := existing[k]
		if fullRefresh && newKeys[k] == 0 {
			if err := os.Remove(target); err != nil {
				return nil, err
			}
			st.PartitionsRemoved = append(st.PartitionsRemoved, k)
			continue
		}
		query := "SELECT * EXCLUDE (__partition) FROM __staged WHERE __partition = " + quoteLit(k)
		if hadFile && !fullRefresh {
			query = fmt.Sprintf("SELECT o.* FROM read_parquet(%s) o ANTI JOIN __staged s ON %s UNION ALL BY NAME %s",
				quoteLit(old), keyMatch(pk, "o", "s"), query)
		}
		tmp, n, err := copyTo(ctx, conn, query, target, kv)
		if err != nil {
			return nil, fmt.Errorf("write partition %s of %s: %w", k, dir, err)
		}
		if n == 0 { // every row of the partition moved elsewhere
			os.Remove(tmp)
			if err := os.Remove(target); err != nil {
				return nil, err
			}
			st.PartitionsRemoved = append(st.PartitionsRemoved, k)
			continue
		}
		if err := PublishFile(tmp, target); err != nil {
			os.Remove(tmp)
			return nil, err
		}
		st.PartitionsWritten = append(st.PartitionsWritten, k)
	}
	if fullRefresh {
		st.Rows = stagedTotal
	} else {
		st.Rows = oldRows - st.Updated + stagedTotal
	}
	slog.Debug("upserted partitions", "dir", dir, "added", st.Added, "updated", st.Updated, "deleted", st.Deleted,
		"written", len(st.PartitionsWritten), "removed", len(st.PartitionsRemoved))
	return st, nil
}

// TableStat sums the Parquet footers of a table: a file, or a folder of partitions.
type TableStat struct {
	Rows              int64
	Columns           int // distinct column names over all files
	Bytes             int64
	UncompressedBytes int64 // sum of the column chunks' uncompressed sizes
	Files             int
}

// TableStats reads the footers of a table's Parquet file or partition folder. A missing table is
// an error that wraps os.ErrNotExist.
func TableStats(path string) (TableStat, error) {
	var st TableStat
	fi, err := os.Stat(path)
	if err != nil {
		return st, err
	}
	files := []string{path}
	if fi.IsDir() {
		parts, err := partitionFiles(path)
		if err != nil {
			return st, err
		}
		files = files[:0]
		for _, f := range parts {
			files = append(files, f)
		}
		sort.Strings(files)
	}
	names := map[string]bool{}
	for _, f := range files {
		r, err := file.OpenParquetFile(f, false)
		if err != nil {
			return st, fmt.Errorf("%s: %w", f, err)
		}
		md := r.MetaData()
		st.Rows += md.NumRows
		for i := range md.Schema.NumColumns() {
			names[md.Schema.Column(i).Name()] = true
		}
		for i := range md.NumRowGroups() {
			rg := md.RowGroup(i)
			for c := range rg.NumColumns() {
				cc, err := rg.ColumnChunk(c)
				if err != nil {
					r.Close()
					return st, fmt.Errorf("%s: %w", f, err)
				}
				st.UncompressedBytes += cc.TotalUncompressedSize()
			}
		}
		r.Close()
		if fi, err := os.Stat(f); err == nil {
			st.Bytes += fi.Size()
		}
		st.Files++
	}
	st.Columns = len(names)
	return st, nil
}

// countsBy runs q, whose rows are (key, count), and returns the counts by key.
func countsBy(ctx context.Context, conn *sql.Conn, q string) (map[string]int64, error) {
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] += n
	}
	return out, rows.Err()
}
