package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// Query is `analyst sql`: it runs one query on a DuckDB database opened read-only ($ANALYST_DUCKDB
// by default, the database a notification script gets) and prints the rows as a JSON array, or
// with --value the first column of the first row as plain text (nothing when there is no row).
// Scripts can thus query their data without a DuckDB library.
func Query(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("analyst sql", flag.ContinueOnError)
	dbPath := fs.String("db", os.Getenv("ANALYST_DUCKDB"), "DuckDB database (default $ANALYST_DUCKDB)")
	value := fs.Bool("value", false, "print the first column of the first row as text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *dbPath == "" {
		return errors.New("usage: analyst sql [--db FILE] [--value] QUERY")
	}
	db, err := sql.Open("duckdb", *dbPath+"?access_mode=read_only")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if *value {
			if len(vals) > 0 && vals[0] != nil {
				fmt.Fprintln(stdout, plain(vals[0]))
			}
			return nil
		}
		row := map[string]any{}
		for i, c := range cols {
			row[c] = vals[i]
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if out == nil {
		out = []map[string]any{}
	}
	return json.NewEncoder(stdout).Encode(out)
}

func plain(v any) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}
