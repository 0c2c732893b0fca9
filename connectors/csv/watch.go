package csv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/fsnotify/fsnotify"
)

// Watch watches the folders that hold the tables' files (under base, or wherever a table's
// csv.path points) and calls onChange(table ID) once per table when its files have changed and
// then stayed unchanged, by events and by size and modification time, for settle. A file copied
// in chunks therefore triggers one call, after the copy ends. Files created later that match a
// table's glob or folder count too, as do files renamed into place and removed files.
// Hidden files (".*"), "*.tmp", "*.part" and "*~" are ignored, so writers that write a temp
// file and rename it trigger once, on the rename.
//
// onChange runs on Watch's goroutine; it should hand the work off (e.g. publish a sync
// request) and return. Watch returns nil when ctx ends, or an error if it cannot start.
func Watch(ctx context.Context, base string, tables []config.Table, settle time.Duration, onChange func(table string)) error {
	if settle <= 0 {
		settle = DefaultSettle
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("csv watch: %w", err)
	}
	if fi, err := os.Stat(base); err != nil {
		return fmt.Errorf("csv watch: base folder: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("csv watch: base folder %s is not a folder", base)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("csv watch: %w", err)
	}
	defer fw.Close()

	w := &watcher{fs: fw, settle: settle, watched: map[string]bool{}, pending: map[string]*pendingTable{}}
	for _, t := range tables {
		w.tables = append(w.tables, watchedTable{id: t.ID, loc: locate(base, t)})
	}
	if err := w.addWatches(false); err != nil {
		return err
	}
	slog.Info("csv: watching for changes", "base", base, "tables", len(tables), "folders", len(w.watched), "settle", settle)

	tick := time.NewTicker(min(max(settle/4, 10*time.Millisecond), 250*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			w.event(ev, time.Now())
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: assume every table may have changed.
				slog.Warn("csv: file events overflowed; re-checking every table", "base", base)
				for _, t := range w.tables {
					w.touch(t.id, "", time.Now())
				}
				continue
			}
			slog.Warn("csv: watch error", "base", base, "err", err)
		case now := <-tick.C:
			for _, id := range w.ready(now) {
				onChange(id)
			}
		}
	}
}

type watchedTable struct {
	id  string
	loc location
}

// fileState is what "stable" is judged by.
type fileState struct {
	exists bool
	size   int64
	mod    int64 // UnixNano
}

func statOf(path string) fileState {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}
	}
	return fileState{exists: true, size: fi.Size(), mod: fi.ModTime().UnixNano()}
}

// pendingTable is a table with changes not yet reported: when it last changed and the state of
// each changed file as of its last event.
type pendingTable struct {
	last  time.Time
	files map[string]fileState
}

type watcher struct {
	fs      *fsnotify.Watcher
	settle  time.Duration
	tables  []watchedTable
	watched map[string]bool
	pending map[string]*pendingTable
}

// watchDirs lists the folders whose events can concern the location.
func (l location) watchDirs() []string {
	if l.pattern != "" {
		dir := filepath.Dir(l.pattern)
		if !hasMeta(dir) {
			return []string{dir}
		}
		// A wildcard in a folder name: watch the fixed prefix (to see new folders) and every
		// folder that matches now.
		out := []string{staticPrefix(dir)}
		matches, _ := filepath.Glob(dir)
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				out = append(out, m)
			}
		}
		return out
	}
	var out []string
	for _, c := range l.candidates {
		out = append(out, filepath.Dir(c))
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			out = append(out, c)
		}
	}
	return out
}

// staticPrefix is the leading part of a pattern without wildcards.
func staticPrefix(pattern string) string {
	parts := strings.Split(pattern, string(filepath.Separator))
	for i, p := range parts {
		if hasMeta(p) {
			return filepath.Join(string(filepath.Separator), filepath.Join(parts[:i]...))
		}
	}
	return pattern
}

// addWatches watches every folder the tables need now. A folder that does not exist yet is
// covered by watching its nearest existing parent until it appears. With scanNew, files already
// in a newly watched folder count as changes (they may have arrived before the watch).
func (w *watcher) addWatches(scanNew bool) error {
	for _, t := range w.tables {
		for _, d := range t.loc.watchDirs() {
			d = existingDir(d)
			if d == "" || w.watched[d] {
				continue
			}
			if err := w.fs.Add(d); err != nil {
				if !scanNew {
					return fmt.Errorf("csv watch: table %s: watch %s: %w", t.id, d, err)
				}
				slog.Warn("csv: cannot watch folder", "table", t.id, "folder", d, "err", err)
				continue
			}
			w.watched[d] = true
			if scanNew {
				w.scan(d)
			}
		}
	}
	return nil
}

func existingDir(d string) string {
	for {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

func (w *watcher) scan(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	now := time.Now()
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		for _, t := range w.tables {
			if t.loc.matches(p) {
				w.touch(t.id, p, now)
			}
		}
	}
}

func (w *watcher) event(ev fsnotify.Event, now time.Time) {
	if ev.Op == fsnotify.Chmod || ignored(ev.Name) {
		return // attribute changes and temp files are not data changes
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
			_ = w.addWatches(true)
		}
	}
	for _, t := range w.tables {
		if t.loc.matches(ev.Name) {
			w.touch(t.id, ev.Name, now)
		}
	}
}

// touch records a change of a table's file (path "" when unknown).
func (w *watcher) touch(id, path string, now time.Time) {
	p := w.pending[id]
	if p == nil {
		p = &pendingTable{files: map[string]fileState{}}
		w.pending[id] = p
	}
	p.last = now
	if path != "" {
		p.files[path] = statOf(path)
	}
}

// ready returns, sorted, the tables whose files have been quiet for settle and whose size and
// modification time are unchanged since their last event; it forgets them.
func (w *watcher) ready(now time.Time) []string {
	var ids []string
	for id, p := range w.pending {
		if now.Sub(p.last) < w.settle {
			continue
		}
		changed := false
		for path, st := range p.files {
			if cur := statOf(path); cur != st {
				p.files[path] = cur
				changed = true
			}
		}
		if changed { // written without events (e.g. a network mount): wait another settle
			p.last = now
			continue
		}
		delete(w.pending, id)
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
