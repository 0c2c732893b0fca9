package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the scripts' database

	"github.com/ai-data-analyst/analyst/config"
)

// BuildDatabase writes a fresh DuckDB file at path holding one view per table over its Parquet
// files (only the tables given: those the user may see) and a table analyst_tables(name, folder,
// files, bytes, last_modified) describing them. Tables without files yet are left out.
func BuildDatabase(ctx context.Context, path string, parquetRoot string, tables []config.Table) error {
	db, err := sql.Open("duckdb", path)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE analyst_tables (name VARCHAR, folder VARCHAR, files INTEGER, bytes BIGINT, last_modified TIMESTAMPTZ)`); err != nil {
		return err
	}
	for _, t := range tables {
		base := filepath.Join(parquetRoot, t.Folder, t.Name)
		var files []string
		if t.IsPartitioned() {
			files, _ = filepath.Glob(filepath.Join(base, "*.parquet"))
		} else if _, err := os.Stat(base + ".parquet"); err == nil {
			files = []string{base + ".parquet"}
		}
		if len(files) == 0 {
			continue
		}
		var size int64
		var newest time.Time
		for _, f := range files {
			fi, err := os.Stat(f)
			if errors.Is(err, fs.ErrNotExist) {
				continue // replaced between glob and stat
			}
			if err != nil {
				return err
			}
			size += fi.Size()
			if fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
		}
		src := "read_parquet(" + quoteLit(filepath.ToSlash(base)+".parquet") + ")"
		if t.IsPartitioned() {
			src = "read_parquet(" + quoteLit(filepath.ToSlash(base)+"/*.parquet") + ", union_by_name=true)"
		}
		if _, err := db.ExecContext(ctx, "CREATE VIEW "+quoteIdent(t.Name)+" AS SELECT * FROM "+src); err != nil {
			return fmt.Errorf("view %s: %w", t.Name, err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO analyst_tables VALUES (?, ?, ?, ?, ?)`, t.Name, t.Folder, len(files), size, newest.UTC()); err != nil {
			return err
		}
	}
	_, err = db.ExecContext(ctx, "CHECKPOINT")
	return err
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteLit(s string) string   { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
