package main

import (
	"context"
	"os"

	"github.com/ai-data-analyst/analyst/notify"
)

func init() {
	register(command{name: "sql", usage: "[--db FILE] [--value] QUERY  query a DuckDB database read-only (notification scripts: $ANALYST_DUCKDB)", run: func(ctx context.Context, g *globals, args []string) error {
		return notify.Query(ctx, args, os.Stdout)
	}})
}
