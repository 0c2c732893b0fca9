package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "convert", usage: "IN.csv OUT.parquet [--types col:TYPE,...]  convert one CSV file", run: runConvert})
}

func runConvert(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("convert")
	types := fs.String("types", "", "declared column types, e.g. id:INTEGER,amount:DECIMAL(12,2),day:DATE (others are inferred)")
	delimiter := fs.String("delimiter", ",", "field delimiter (\\t for tab)")
	noHeader := fs.Bool("no-header", false, "the file has no header line (name the columns with --types)")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(paths) != 2 {
		return &exitError{code: 2, msg: "usage: analyst convert IN.csv OUT.parquet [--types col:TYPE,...]"}
	}
	opts := store.ConvertOptions{Format: store.CSVFormat{Delimiter: ',', Quote: '"', Header: !*noHeader}}
	if d := strings.ReplaceAll(*delimiter, `\t`, "\t"); len([]rune(d)) == 1 {
		opts.Format.Delimiter = []rune(d)[0]
	} else {
		return fmt.Errorf("--delimiter must be one character, got %q", *delimiter)
	}
	cols, err := parseTypes(*types)
	if err != nil {
		return err
	}
	opts.Columns = cols
	rep, err := store.ConvertCSV(ctx, paths[:1], opts, paths[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d rows, %d columns, %d bytes\n", paths[1], rep.Rows, len(rep.Columns), rep.OutputBytes)
	for _, c := range rep.Columns {
		fmt.Fprintf(os.Stderr, "  %-30s %s\n", c.Name, c.Type)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(os.Stderr, "warning: column %s: %d value(s) %s, first at row %d: %q (written as null)\n", w.Column, w.Count, w.Reason, w.FirstRow, w.Example)
	}
	return nil
}

// parseTypes reads "a:INTEGER,b:DECIMAL(12,2)"; commas inside parentheses belong to the type.
func parseTypes(s string) ([]store.Column, error) {
	var cols []store.Column
	depth, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch s[i] {
			case '(':
				depth++
				continue
			case ')':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		part := strings.TrimSpace(s[start:i])
		start = i + 1
		if part == "" {
			continue
		}
		name, typ, ok := strings.Cut(part, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(typ) == "" {
			return nil, fmt.Errorf("--types: %q is not column:TYPE", part)
		}
		cols = append(cols, store.Column{Name: strings.TrimSpace(name), Type: strings.ToUpper(strings.TrimSpace(typ))})
	}
	return cols, nil
}
