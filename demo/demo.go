// Package demo owns the built-in demo instance: an e-commerce shop ("Demo Shop Analytics")
// whose configuration, table catalogue and CSV source data it writes into an instance folder,
// so that `analyst serve` with no configuration (and `analyst init --demo`) shows real data
// within seconds. The CSVs are generated from a seeded PRNG, so the repository holds no data
// files and the same day and seed always give the same bytes.
package demo

import (
	"bufio"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/ai-data-analyst/analyst/store"
)

// Options tune Write.
type Options struct {
	// Force overwrites files that already exist; without it Write changes nothing if any does.
	Force bool
	// Now anchors the data: orders run over the 24 months before Now's day (UTC). Zero means
	// the current time; tests fix it to get identical bytes.
	Now time.Time
	// Seed of the generator; zero means the default seed.
	Seed uint64
}

// DefaultSeed is the generator seed used when Options.Seed is zero.
const DefaultSeed = 20240601

// SourceDir is where the demo's CSVs go, relative to the instance folder
// (data_source.csv.path in the demo's instance.yaml).
const SourceDir = "data/source"

//go:embed files
var files embed.FS

// tables lists the demo tables in catalogue order.
var tables = []string{
	"categories", "suppliers", "products", "customers", "orders", "order_items",
	"payments", "shipments", "reviews", "employee_salaries", "campaigns", "campaign_touches",
}

// Tables returns the names of the demo tables.
func Tables() []string { return append([]string(nil), tables...) }

// Write writes the demo instance into home: config/instance.yaml, docs/data_description.md,
// docs/datasets/marketing.md and the generated CSVs under data/source. All files appear at
// once at the end (each is written to a hidden temp file and renamed), data first and
// config/instance.yaml last. Without opts.Force it fails, writing nothing, if any of those
// files exists; the error names it and wraps fs.ErrExist.
func Write(home string, opts Options) error {
	start := time.Now()
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Seed == 0 {
		opts.Seed = DefaultSeed
	}
	g := newGenerator(opts.Now, opts.Seed)
	targets := append(g.csvPaths(), docs...)
	if !opts.Force {
		for _, rel := range targets {
			p := filepath.Join(home, rel)
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("demo: %s already exists; not overwriting it (use force to replace the demo files): %w", p, fs.ErrExist)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("demo: %w", err)
			}
		}
	}

	out := &fileSet{home: home}
	defer out.abort()
	if err := g.generate(out); err != nil {
		return err
	}
	for _, rel := range docs {
		content, err := files.ReadFile("files/" + rel)
		if err != nil {
			return err
		}
		w, err := out.create(rel)
		if err != nil {
			return err
		}
		if _, err := w.Write(content); err != nil {
			return err
		}
	}
	if err := out.commit(); err != nil {
		return err
	}
	if opts.Force {
		if err := removeStaleDrops(home, g); err != nil {
			return err
		}
	}
	slog.Info("demo: instance written", "home", home, "files", out.count,
		"bytes", out.bytes, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// docs are the embedded text files (under files/), in commit order: config last, because its
// appearance is what makes a folder an instance.
var docs = []string{
	"docs/data_description.md",
	"docs/datasets/marketing.md",
	"config/instance.yaml",
}

var dropName = regexp.MustCompile(`^reviews_\d{4}_\d{2}\.csv$`)

// removeStaleDrops deletes monthly review files of an earlier demo run that the current one
// did not write (the 24-month window moved on), so the table holds no duplicate reviews.
func removeStaleDrops(home string, g *generator) error {
	dir := filepath.Join(home, SourceDir, "reviews")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	current := map[string]bool{}
	for _, p := range g.csvPaths() {
		current[filepath.Join(home, p)] = true
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if dropName.MatchString(e.Name()) && !current[p] {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("demo: remove stale %s: %w", p, err)
			}
		}
	}
	return nil
}

// fileSet writes files to hidden temp files next to their targets and renames them all on commit.
type fileSet struct {
	home  string
	files []*pendingFile
	count int
	bytes int64
}

type pendingFile struct {
	f     *os.File
	bw    *bufio.Writer
	final string
}

// create starts the file at rel (relative to home).
func (s *fileSet) create(rel string) (io.Writer, error) {
	final := filepath.Join(s.home, filepath.FromSlash(rel))
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	p := &pendingFile{f: f, bw: bufio.NewWriterSize(f, 256<<10), final: final}
	s.files = append(s.files, p)
	return p.bw, nil
}

// commit flushes and fsyncs every file, renames them into place in creation order and fsyncs
// each folder once (store.PublishFile would fsync a folder per file).
func (s *fileSet) commit() error {
	for _, p := range s.files {
		if err := p.bw.Flush(); err != nil {
			return fmt.Errorf("demo: write %s: %w", p.final, err)
		}
		if fi, err := p.f.Stat(); err == nil {
			s.bytes += fi.Size()
		}
		if err := p.f.Chmod(0o644); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := p.f.Sync(); err != nil {
			return fmt.Errorf("demo: write %s: %w", p.final, err)
		}
		if err := p.f.Close(); err != nil {
			return fmt.Errorf("demo: write %s: %w", p.final, err)
		}
	}
	dirs := map[string]bool{}
	for i, p := range s.files {
		if err := os.Rename(p.f.Name(), p.final); err != nil {
			s.files = s.files[i:]
			return fmt.Errorf("demo: publish %s: %w", p.final, err)
		}
		dirs[filepath.Dir(p.final)] = true
	}
	s.count += len(s.files)
	s.files = nil
	for d := range dirs {
		if err := store.SyncDir(d); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}

// abort removes temp files not yet published.
func (s *fileSet) abort() {
	for _, p := range s.files {
		p.f.Close()
		os.Remove(p.f.Name())
	}
}
