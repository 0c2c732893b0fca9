package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ai-data-analyst/analyst/catalog"
)

func init() {
	register(command{name: "profile", usage: "PATH [--json] [--pk col,...]  profile a Parquet file or partition folder", run: runProfile})
}

func runProfile(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("profile")
	asJSON := fs.Bool("json", false, "print the profile as JSON (the profiles.json entry)")
	pk := fs.String("pk", "", "primary key columns, comma-separated: flags them and counts duplicate keys")
	sampleAbove := fs.Int64("sample-above", catalog.DefaultSampleAbove, "profile an even sample of about this many rows when the table has more (-1: never)")
	// Flags may come after the path.
	var paths []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(paths) != 1 {
		return &exitError{code: 2, msg: "usage: analyst profile PATH [--json] [--pk col,...]"}
	}
	opt := catalog.Options{SampleAbove: *sampleAbove}
	for _, c := range strings.Split(*pk, ",") {
		if c = strings.TrimSpace(c); c != "" {
			opt.PrimaryKey = append(opt.PrimaryKey, c)
		}
	}
	p, err := catalog.ProfileParquet(ctx, paths[0], opt)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	printProfile(os.Stdout, paths[0], p)
	return nil
}

// printProfile writes a readable summary: the table, one line per column, then the alerts.
func printProfile(w io.Writer, path string, p *catalog.TableProfile) {
	fmt.Fprintf(w, "%s\n", path)
	sampled := ""
	if p.Sampled {
		sampled = fmt.Sprintf(" (statistics on a sample of %d rows)", p.SampledRows)
	}
	fmt.Fprintf(w, "  rows %d%s, columns %d, files %d, %v MB\n", p.RowCount, sampled, p.ColumnCount, p.Files, figure(p.FileSizeMB))
	fmt.Fprintf(w, "  completeness %v%%, missing cells %d (%v%%)", figure(p.AvgCompleteness), p.MissingCells, figure(p.MissingCellsPct))
	if p.PrimaryKey != "" || p.DuplicateRows > 0 {
		fmt.Fprintf(w, ", duplicate keys %d", p.DuplicateRows)
	}
	fmt.Fprintln(w)
	if p.DateRange != nil {
		fmt.Fprintf(w, "  dates %s to %s (%s)\n", p.DateRange.Earliest, p.DateRange.Latest, p.DateRange.Column)
	}
	fmt.Fprintf(w, "  profiled in %vs\n\n", figure(p.ProfileSeconds))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "column\ttype\tmissing\tdistinct\tsummary")
	for _, c := range p.Columns {
		name := c.Name
		if c.IsPrimaryKey {
			name += " (key)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v%%\t%d\t%s\n", name, c.Type, figure(c.MissingPct), c.UniqueCount, columnSummary(c))
	}
	tw.Flush()
	if len(p.Alerts) > 0 {
		fmt.Fprintln(w, "\nalerts:")
		for _, a := range p.Alerts {
			fmt.Fprintf(w, "  %-16s %s\n", a.Type, a.Message)
		}
	}
}

func columnSummary(c catalog.ColumnProfile) string {
	switch {
	case c.NumericStats != nil:
		s := c.NumericStats
		return fmt.Sprintf("min %v, median %v, mean %v, max %v, stddev %v", figure(s.Min), figure(s.Median), figure(s.Mean), figure(s.Max), figure(s.Stddev))
	case c.DateStats != nil:
		return fmt.Sprintf("%s to %s (%d days)", c.DateStats.Earliest, c.DateStats.Latest, c.DateStats.SpanDays)
	case c.BooleanStats != nil:
		return fmt.Sprintf("true %d, false %d (%v%% true)", c.BooleanStats.TrueCount, c.BooleanStats.FalseCount, figure(c.BooleanStats.TruePct))
	case c.StringStats != nil:
		s := c.StringStats
		out := fmt.Sprintf("length %d-%d (avg %v)", s.MinLength, s.MaxLength, figure(s.AvgLength))
		var top []string
		for i, v := range s.TopValues {
			if i == 3 {
				break
			}
			top = append(top, fmt.Sprintf("%q %v%%", v.Value, figure(v.Pct)))
		}
		if len(top) > 0 {
			out += "; top " + strings.Join(top, ", ")
		}
		return out
	}
	return ""
}

// figure prints a statistic as JSON does: 2 decimals at most, "null" when it has no value.
func figure(f catalog.Float) string {
	b, _ := f.MarshalJSON()
	return string(b)
}
