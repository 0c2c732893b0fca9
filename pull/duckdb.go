package pull

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the analytics database

	"github.com/ai-data-analyst/analyst/workspace"
)

// viewMarker is the comment on the views a pull manages; views and tables without it are the
// analyst's and are never changed.
const viewMarker = "managed by analyst pull"

type viewResult struct {
	views, dropped, warnings []string
}

// buildViews makes analytics.duckdb hold one view per table of the view (over absolute paths,
// union_by_name for partitioned tables), drops the managed views of tables that left it and
// leaves everything else alone. It does nothing when the views it would build are the ones it
// built last time. A database DuckDB cannot open is renamed aside, never deleted.
func buildViews(ctx context.Context, dbPath, serverDir string, view *workspace.View, st *state, log *slog.Logger) (viewResult, error) {
	var res viewResult
	type def struct{ name, sql string }
	var defs []def
	fp := sha256.New()
	for _, t := range view.Tables {
		var schemas []string
		for _, f := range view.Files {
			if f.Table == t.Name {
				schemas = append(schemas, f.Schema)
			}
		}
		if len(schemas) == 0 {
			continue
		}
		base := filepath.ToSlash(filepath.Join(serverDir, "parquet", t.Folder, t.Name))
		src := "read_parquet(" + quoteLit(base+".parquet") + ")"
		if t.Partitioned {
			src = "read_parquet(" + quoteLit(base+"/*.parquet") + ", union_by_name=true)"
		}
		d := def{t.Name, "CREATE OR REPLACE VIEW " + quoteIdent(t.Name) + " AS SELECT * FROM " + src}
		defs = append(defs, d)
		sort.Strings(schemas)
		// A view's columns are fixed when it is created, so a schema change rebuilds it.
		fmt.Fprintf(fp, "%s\n%s\n", d.sql, strings.Join(schemas, ","))
		res.views = append(res.views, t.Name)
	}
	// Skipped when the views would be the same and the database is as this client left it.
	fingerprint := hex.EncodeToString(fp.Sum(nil))
	if st.Views != "" && st.Views == fingerprint+dbStamp(dbPath) {
		return res, nil
	}

	db, err := openAnalytics(ctx, dbPath, log)
	if err != nil {
		return res, err
	}
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	managed, others, err := existing(ctx, db)
	if err != nil {
		return res, err
	}
	want := map[string]bool{}
	res.views = res.views[:0]
	failed := false
	for _, d := range defs {
		want[d.name] = true
		if others[strings.ToLower(d.name)] {
			res.warnings = append(res.warnings, fmt.Sprintf("table %s: your database has a table or view of that name; left alone, no view made", d.name))
			continue
		}
		_, err := db.ExecContext(ctx, d.sql)
		if err == nil {
			_, err = db.ExecContext(ctx, "COMMENT ON VIEW "+quoteIdent(d.name)+" IS "+quoteLit(viewMarker))
		}
		if err != nil {
			failed = true
			res.warnings = append(res.warnings, fmt.Sprintf("view %s: %v", d.name, err))
			continue
		}
		res.views = append(res.views, d.name)
	}
	for name := range managed {
		if want[name] {
			continue
		}
		if _, err := db.ExecContext(ctx, "DROP VIEW IF EXISTS "+quoteIdent(name)); err != nil {
			return res, fmt.Errorf("drop view %s: %w", name, err)
		}
		res.dropped = append(res.dropped, name)
	}
	sort.Strings(res.dropped)
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return res, err
	}
	closed = true
	if err := db.Close(); err != nil {
		return res, err
	}
	st.Views = ""
	if !failed {
		st.Views = fingerprint + dbStamp(dbPath)
	}
	return res, nil
}

// dbStamp identifies the database file's state: size and modification time ("" when missing).
func dbStamp(dbPath string) string {
	fi, err := os.Stat(dbPath)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf(":%d:%d", fi.Size(), fi.ModTime().UnixNano())
}

// openAnalytics opens the database, renaming a corrupt one aside (with its WAL) and starting
// afresh. A database locked by another program is an error: it is in use, not corrupt.
func openAnalytics(ctx context.Context, dbPath string, log *slog.Logger) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o755); err != nil {
		return nil, err
	}
	db, err := probe(ctx, dbPath)
	if err == nil {
		return db, nil
	}
	if strings.Contains(strings.ToLower(err.Error()), "lock") {
		return nil, fmt.Errorf("%s is in use by another program (close DuckDB sessions on it and pull again): %w", dbPath, err)
	}
	if _, serr := os.Stat(dbPath); serr != nil {
		return nil, err // nothing to set aside: the error is not the file's
	}
	aside := dbPath + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
	if rerr := os.Rename(dbPath, aside); rerr != nil {
		return nil, fmt.Errorf("%s cannot be opened (%v) nor set aside: %w", dbPath, err, rerr)
	}
	if rerr := os.Rename(dbPath+".wal", aside+".wal"); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return nil, rerr
	}
	log.Warn("the analytics database could not be opened; it was set aside and a new one created", "kept_as", aside, "error", err)
	return probe(ctx, dbPath)
}

func probe(ctx context.Context, dbPath string) (*sql.DB, error) {
	db, err := sql.Open("duckdb", dbPath)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "SELECT 1"); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// existing returns the views this client manages, and the lower-cased names of every other
// table and view in the database's main schema.
func existing(ctx context.Context, db *sql.DB) (managed, others map[string]bool, err error) {
	managed, others = map[string]bool{}, map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT view_name AS name, coalesce(comment, '') = ? AS ours FROM duckdb_views()
		WHERE NOT internal AND database_name = current_database() AND schema_name = 'main'
		UNION ALL SELECT table_name, false FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'`, viewMarker)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var ours bool
		if err := rows.Scan(&name, &ours); err != nil {
			return nil, nil, err
		}
		if ours {
			managed[name] = true
		} else {
			others[strings.ToLower(name)] = true
		}
	}
	return managed, others, rows.Err()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteLit(s string) string   { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
