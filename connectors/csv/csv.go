// Package csv is the "csv" data-source connector: tables whose data are CSV files in a local
// folder (data_source.csv.path). It owns finding a table's files (a file, a glob or a folder of
// drops), checking that they agree on a header, describing their format, and watching the folder
// so that a file dropped in place triggers a sync once it has stopped changing.
//
// Settings (data_source.csv in instance.yaml):
//
//	path:   base folder, relative to the instance folder (default "data/source")
//	watch:  true to sync a table when its files change (see Watch)
//	settle: how long a changed file must stay unchanged before it counts (default "2s")
//
// Extract never copies: it returns the source files themselves (Temporary=false).
// Incremental tables: when ChangedSince (and ChangedUntil) is set, only files whose modification
// time falls in (ChangedSince, ChangedUntil] are returned, so an incremental table over a folder
// of daily drops picks up only the new files; with none new the Extraction has no files.
package csv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors"
)

// Defaults of the settings block.
const (
	DefaultPath   = "data/source"
	DefaultSettle = 2 * time.Second
)

func init() {
	connectors.Register("csv", Open)
}

// settings is the data_source.csv block.
type settings struct {
	Path   string `yaml:"path" json:"path"`
	Watch  bool   `yaml:"watch" json:"watch"`
	Settle string `yaml:"settle" json:"settle"`
}

// Source is the csv connector. Besides connectors.Connector it offers Watch for the server's
// file-watch trigger.
type Source struct {
	base   string
	watch  bool
	settle time.Duration
}

// Open builds the connector from its settings block; it is the registered factory.
func Open(s connectors.Settings) (connectors.Connector, error) {
	var cfg settings
	if err := s.Decode(&cfg); err != nil {
		return nil, err
	}
	base := cfg.Path
	if base == "" {
		base = DefaultPath
	}
	if !filepath.IsAbs(base) {
		base = filepath.Join(s.Dir(), base)
	}
	settle := DefaultSettle
	if cfg.Settle != "" {
		d, err := time.ParseDuration(cfg.Settle)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("data_source.csv.settle: %q is not a positive duration (e.g. \"2s\", \"500ms\")", cfg.Settle)
		}
		settle = d
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return nil, fmt.Errorf("data_source.csv.path: %w", err)
	}
	return &Source{base: base, watch: cfg.Watch, settle: settle}, nil
}

// Base is the absolute base folder.
func (s *Source) Base() string { return s.base }

// WatchEnabled reports whether data_source.csv.watch is on.
func (s *Source) WatchEnabled() bool { return s.watch }

// Settle is how long files must be stable before a watched change fires.
func (s *Source) Settle() time.Duration { return s.settle }

// Check tests that the base folder exists and can be listed.
func (s *Source) Check(ctx context.Context) error {
	fi, err := os.Stat(s.base)
	if err != nil {
		return fmt.Errorf("csv source: base folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("csv source: base folder %s is not a folder", s.base)
	}
	if _, err := os.ReadDir(s.base); err != nil {
		return fmt.Errorf("csv source: base folder %s is not readable: %w", s.base, err)
	}
	return nil
}

// Extract finds the table's files and describes them; see the package comment.
func (s *Source) Extract(ctx context.Context, req connectors.ExtractRequest) (*connectors.Extraction, error) {
	t := req.Table
	files, err := tableFiles(s.base, t)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.ID, err)
	}
	format, err := tableFormat(t, files)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.ID, err)
	}
	if !req.ChangedSince.IsZero() || !req.ChangedUntil.IsZero() {
		if files, err = changedFiles(files, req.ChangedSince, req.ChangedUntil); err != nil {
			return nil, fmt.Errorf("table %s: %w", t.ID, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ext := &connectors.Extraction{Format: format}
	if len(files) == 0 {
		slog.Info("csv: no changed files", "table", t.ID, "since", req.ChangedSince)
		ext.Columns = declaredColumns(t.Columns)
		return ext, nil
	}
	ext.Columns, err = tableColumns(t, files, format)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.ID, err)
	}
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	if req.Progress != nil {
		req.Progress(total)
	}
	ext.Files = files
	slog.Debug("csv: extracted", "table", t.ID, "files", len(files), "bytes", total)
	return ext, nil
}

// changedFiles keeps the files modified in (since, until]; a zero bound is open.
func changedFiles(files []string, since, until time.Time) ([]string, error) {
	var out []string
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		m := fi.ModTime()
		if (since.IsZero() || m.After(since)) && (until.IsZero() || !m.After(until)) {
			out = append(out, f)
		}
	}
	return out, nil
}

// Watch runs the file watch for tables over this source's base folder; see the package Watch.
func (s *Source) Watch(ctx context.Context, tables []config.Table, onChange func(table string)) error {
	return Watch(ctx, s.base, tables, s.settle, onChange)
}

// ErrNoFiles is wrapped by Extract when a table's path, glob or folder holds no data file.
var ErrNoFiles = errors.New("no files matched")
