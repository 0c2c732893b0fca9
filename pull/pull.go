// Package pull owns the analyst's side of distribution: it mirrors the caller's view of the
// server (GET /api/manifest) into a workspace, downloading only new or changed files (parallel,
// resumable, each verified by sha256 before it is renamed into place), deleting what left the
// view, then builds the workspace's DuckDB views and CLAUDE.md. It pushes the analyst's session
// transcripts and CLAUDE.local.md back. It never writes into the workspace's user/ folder, except
// for the views of user/duckdb/analytics.duckdb.
//
// Layout of a workspace D:
//
//	D/server/{parquet,docs,metadata,workspace}   read-only mirror
//	D/user/{duckdb,notifications,artifacts,scripts,sessions}   the analyst's own
//	D/CLAUDE.md, D/.claude/settings.json       generated from the server's templates
//	D/.claude/rules/km_*.md                    the analyst's corporate memory rules (rules.go)
//	D/.analyst/config (0600), state.json, partial/   the client's own bookkeeping
package pull

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/ai-data-analyst/analyst/store"
	"github.com/ai-data-analyst/analyst/workspace"
)

// UserDirs are the analyst's own folders, created when missing and otherwise never touched.
var UserDirs = []string{"duckdb", "notifications", "artifacts", "scripts", "sessions"}

// Options configure a pull.
type Options struct {
	Server string // base URL; "" = the one remembered in the workspace
	Token  string // API token; "" = the one remembered
	Dir    string // the workspace
	DryRun bool   // report what would change, change nothing

	Parallel int           // concurrent downloads (default 4)
	Attempts int           // tries per request (default 4)
	Backoff  time.Duration // first retry delay, doubled each time (default 500ms)
	Progress io.Writer     // where the progress bar is drawn; nil = no bar
	Client   *http.Client  // nil = a client with sensible timeouts
	Logger   *slog.Logger
}

// Result is what a pull did (or, with DryRun, would do).
type Result struct {
	Server       string   `json:"server"`
	Version      uint64   `json:"manifest_version"`
	Pulled       int      `json:"pulled"`
	Bytes        int64    `json:"bytes"`
	Unchanged    int      `json:"unchanged"`
	Removed      int      `json:"removed"`
	DryRun       bool     `json:"dry_run,omitempty"`
	PulledFiles  []string `json:"pulled_files,omitempty"`
	RemovedFiles []string `json:"removed_files,omitempty"`
	Database     string   `json:"database,omitempty"`
	Views        []string `json:"views,omitempty"`
	DroppedViews []string `json:"dropped_views,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

// Summary is the one-line account of a pull.
func (r *Result) Summary() string {
	s := fmt.Sprintf("pulled %d files (%s), %d unchanged, %d removed", r.Pulled, humanBytes(r.Bytes), r.Unchanged, r.Removed)
	if r.DryRun {
		s = "dry run: would have " + s
	}
	return s
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// state is what the client remembers of its mirror, so an unchanged file is recognized by a
// stat call instead of a hash.
type state struct {
	Files map[string]fileState `json:"files"`
	Views string               `json:"views,omitempty"` // fingerprint of the views last built
}

type fileState struct {
	Size   int64     `json:"size"`
	MTime  time.Time `json:"mtime"`
	SHA256 string    `json:"sha256"`
}

type puller struct {
	opts   Options
	client *http.Client
	server *url.URL
	dir    string // absolute
	log    *slog.Logger

	mu      sync.Mutex
	state   state
	saved   []byte          // the state as last read or written, so an unchanged one is not rewritten
	written []string        // files (mirror paths) renamed into place and not yet flushed
	dirs    map[string]bool // their directories
}

// Run pulls the workspace opts.Dir from the server.
func Run(ctx context.Context, opts Options) (*Result, error) {
	p, err := newPuller(opts)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	view, err := p.manifest(ctx)
	if err != nil {
		return nil, err
	}
	p.log.Debug("manifest fetched", "files", len(view.Files), "took", time.Since(start))
	res := &Result{Server: p.server.String(), Version: view.Version, DryRun: opts.DryRun}
	if !opts.DryRun {
		if err := p.layout(); err != nil {
			return nil, err
		}
		if err := SaveConfig(p.dir, Config{Server: p.server.String(), Token: p.opts.Token}); err != nil {
			return nil, err
		}
	}
	p.state, p.saved = loadState(p.dir)

	todo, err := p.plan(view, res)
	if err != nil {
		return nil, err
	}
	stale, err := p.stale(view)
	if err != nil {
		return nil, err
	}
	for _, f := range todo {
		res.PulledFiles = append(res.PulledFiles, f.Path)
		res.Bytes += f.Size
	}
	res.Pulled, res.Removed, res.RemovedFiles = len(todo), len(stale), stale
	p.log.Debug("planned", "pull", len(todo), "unchanged", res.Unchanged, "remove", len(stale), "took", time.Since(start))
	if opts.DryRun {
		return res, nil
	}
	err = p.download(ctx, todo)
	p.log.Debug("downloaded", "took", time.Since(start))
	// What arrived is kept and remembered even when some files failed.
	if serr := p.flush(); err == nil {
		err = serr
	}
	if serr := p.saveState(); err == nil {
		err = serr
	}
	if err != nil {
		return res, err
	}
	for _, rel := range stale {
		if err := os.Remove(filepath.Join(p.dir, "server", filepath.FromSlash(rel))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, err
		}
		delete(p.state.Files, rel)
	}
	removeEmptyDirs(filepath.Join(p.dir, "server"))
	p.log.Debug("mirrored", "took", time.Since(start))

	db := filepath.Join(p.dir, "user", "duckdb", "analytics.duckdb")
	res.Database = db
	vr, err := buildViews(ctx, db, filepath.Join(p.dir, "server"), view, &p.state, p.log)
	if err != nil {
		return res, err
	}
	res.Views, res.DroppedViews, res.Warnings = vr.views, vr.dropped, vr.warnings
	p.log.Debug("views ready", "views", len(vr.views), "took", time.Since(start))
	if err := p.saveState(); err != nil {
		return res, err
	}
	if err := p.workspaceFiles(view); err != nil {
		return res, err
	}
	if err := p.installRules(); err != nil {
		return res, err
	}
	return res, nil
}

func newPuller(opts Options) (*puller, error) {
	if opts.Dir == "" {
		opts.Dir = "."
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	saved, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	if opts.Server == "" {
		opts.Server = saved.Server
	}
	if opts.Token == "" {
		opts.Token = saved.Token
	}
	if opts.Server == "" || opts.Token == "" {
		return nil, fmt.Errorf("no server or token: pass --server URL --token T once (they are remembered in %s)", configPath(dir))
	}
	u, err := url.Parse(strings.TrimRight(opts.Server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want a URL like https://data.example.com", opts.Server)
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 4
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			MaxIdleConnsPerHost:   opts.Parallel,
			ResponseHeaderTimeout: time.Minute,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   30 * time.Second,
		}}
	}
	return &puller{opts: opts, client: client, server: u, dir: dir, log: opts.Logger, dirs: map[string]bool{}}, nil
}

// layout creates the workspace's folders; existing ones are left as they are.
func (p *puller) layout() error {
	dirs := []string{"server/parquet", "server/docs", "server/metadata", ".analyst/partial"}
	for _, d := range UserDirs {
		dirs = append(dirs, "user/"+d)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(p.dir, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// httpError is a reply that is not a success; 5xx and 429 are worth retrying.
type httpError struct {
	status     int
	msg        string
	retryAfter time.Duration
}

func (e *httpError) Error() string { return fmt.Sprintf("server replied %d: %s", e.status, e.msg) }

func (e *httpError) retryable() bool {
	return e.status >= 500 || e.status == http.StatusTooManyRequests || e.status == http.StatusRequestTimeout
}

func replyError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var body struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		msg = body.Error
	}
	e := &httpError{status: resp.StatusCode, msg: msg}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.retryAfter = time.Duration(s) * time.Second
	}
	if resp.StatusCode == http.StatusUnauthorized {
		e.msg += " (check the token: `analyst users token create --user EMAIL` on the server, or the portal)"
	}
	return e
}

// retry runs fn until it succeeds, fails permanently, or runs out of attempts; the delay
// doubles each time, or is what a 429/503 asked for.
func (p *puller) retry(ctx context.Context, what string, fn func() error) error {
	delay := p.opts.Backoff
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= p.opts.Attempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		wait := delay
		var he *httpError
		if errors.As(err, &he) && he.retryAfter > 0 {
			wait = he.retryAfter
		}
		p.log.Warn("retrying", "what", what, "attempt", attempt, "in", wait, "error", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay *= 2
	}
}

var errPermanent = errors.New("permanent")

func retryable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.retryable()
	}
	return !errors.Is(err, errPermanent) && !errors.Is(err, context.Canceled)
}

func (p *puller) get(ctx context.Context, rel string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.server.String()+rel, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+p.opts.Token)
	return p.client.Do(req)
}

// manifest fetches the caller's view and checks every path before anything is written with it.
func (p *puller) manifest(ctx context.Context) (*workspace.View, error) {
	var view workspace.View
	err := p.retry(ctx, "manifest", func() error {
		resp, err := p.get(ctx, "/api/manifest", nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return replyError(resp)
		}
		if err := json.NewDecoder(resp.Body).Decode(&view); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch manifest from %s: %w", p.server, err)
	}
	for _, f := range view.Files {
		if !safePath(f.Path) || len(f.SHA256) != 64 || f.Size < 0 {
			return nil, fmt.Errorf("manifest from %s has an invalid entry %q", p.server, f.Path)
		}
	}
	return &view, nil
}

// safePath accepts only clean relative paths inside the mirror's known folders.
func safePath(p string) bool {
	if p == "" || path.Clean(p) != p || path.IsAbs(p) || strings.Contains(p, "\\") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || strings.HasPrefix(seg, ".") {
			return false
		}
	}
	top, _, _ := strings.Cut(p, "/")
	return top == "parquet" || top == "docs" || top == "metadata" || top == "workspace" || top == "rules"
}

// plan sorts the view's files into unchanged ones and those to download.
func (p *puller) plan(view *workspace.View, res *Result) ([]workspace.File, error) {
	var todo []workspace.File
	for _, f := range view.Files {
		local := filepath.Join(p.dir, "server", filepath.FromSlash(f.Path))
		fi, err := os.Stat(local)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
			todo = append(todo, f)
			continue
		}
		st, known := p.state.Files[f.Path]
		if known && st.SHA256 == f.SHA256 && st.Size == fi.Size() && st.MTime.Equal(fi.ModTime()) {
			res.Unchanged++
			continue
		}
		// Unknown or touched since: the content decides.
		sum, err := hashFile(local)
		if err != nil {
			return nil, err
		}
		if sum != f.SHA256 {
			todo = append(todo, f)
			continue
		}
		p.state.Files[f.Path] = fileState{Size: fi.Size(), MTime: fi.ModTime(), SHA256: sum}
		res.Unchanged++
	}
	return todo, nil
}

// stale lists the mirror's files that are no longer in the view.
func (p *puller) stale(view *workspace.View) ([]string, error) {
	want := make(map[string]bool, len(view.Files))
	for _, f := range view.Files {
		want[f.Path] = true
	}
	root := filepath.Join(p.dir, "server")
	var out []string
	err := filepath.WalkDir(root, func(fp string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, fp)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !want[rel] {
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func removeEmptyDirs(root string) {
	var dirs []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != root {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if top := filepath.Dir(dirs[i]) == root; !top {
			os.Remove(dirs[i]) // fails, harmlessly, when not empty
		}
	}
}

// download fetches files with opts.Parallel workers; the first permanent failure stops the
// others from starting new files.
func (p *puller) download(ctx context.Context, files []workspace.File) error {
	if len(files) == 0 {
		return nil
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	var done atomic.Int64
	var bar *mpb.Bar
	var progress *mpb.Progress
	if p.opts.Progress != nil {
		progress = mpb.NewWithContext(ctx, mpb.WithOutput(p.opts.Progress), mpb.WithWidth(40), mpb.WithAutoRefresh())
		bar = progress.AddBar(total,
			mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
				return fmt.Sprintf("%d/%d files", done.Load(), len(files))
			}, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), decor.Name(" "),
				decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
		)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan workspace.File)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	for range min(p.opts.Parallel, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				err := p.retry(ctx, f.Path, func() error { return p.fetch(ctx, f, bar) })
				if err != nil {
					errMu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", f.Path, err))
					errMu.Unlock()
					cancel()
					continue
				}
				done.Add(1)
			}
		}()
	}
feed:
	for _, f := range files {
		select {
		case jobs <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if progress != nil {
		if len(errs) > 0 {
			bar.Abort(false)
		} else {
			bar.SetTotal(-1, true)
		}
		progress.Wait()
	}
	if len(errs) > 0 {
		return fmt.Errorf("download failed (the files already pulled are kept; run again to resume): %w", errors.Join(errs...))
	}
	return ctx.Err()
}

// fetch downloads one file into .analyst/partial/<sha256>, resuming what an earlier attempt
// left there, verifies its sha256 and renames it into the mirror.
func (p *puller) fetch(ctx context.Context, f workspace.File, bar *mpb.Bar) error {
	partial := filepath.Join(p.dir, ".analyst", "partial", f.SHA256)
	have := int64(0)
	if fi, err := os.Stat(partial); err == nil && fi.Size() <= f.Size {
		have = fi.Size()
	}
	h := http.Header{}
	if have > 0 {
		h.Set("Range", fmt.Sprintf("bytes=%d-", have))
		h.Set("If-Range", `"`+f.SHA256+`"`) // a changed file comes whole
	}
	resp, err := p.get(ctx, "/api/files/"+escapePath(f.Path), h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	flags := os.O_RDWR | os.O_CREATE
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)) {
			os.Remove(partial)
			return fmt.Errorf("unexpected Content-Range %q", resp.Header.Get("Content-Range"))
		}
		flags |= os.O_APPEND
	case http.StatusOK:
		have = 0
		flags |= os.O_TRUNC
	case http.StatusRequestedRangeNotSatisfiable:
		os.Remove(partial)
		return errors.New("stale partial download")
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %w", errPermanent, replyError(resp))
	default:
		return replyError(resp)
	}
	if et := strings.Trim(resp.Header.Get("ETag"), `"`); et != "" && et != f.SHA256 {
		// Republished since the manifest was fetched: the next pull gets the new version.
		return fmt.Errorf("%w: changed on the server while pulling (run again)", errPermanent)
	}
	out, err := os.OpenFile(partial, flags, 0o644)
	if err != nil {
		return err
	}
	hash := sha256.New()
	if have > 0 {
		if _, err := io.Copy(hash, io.NewSectionReader(out, 0, have)); err != nil {
			out.Close()
			return err
		}
		if bar != nil {
			bar.IncrInt64(have)
		}
	}
	var w io.Writer = io.MultiWriter(out, hash)
	if bar != nil {
		w = barWriter{w, bar}
	}
	n, err := io.CopyBuffer(w, io.LimitReader(resp.Body, f.Size-have+1), make([]byte, 256<<10))
	if err == nil {
		startWriteback(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err // the partial file stays for the next attempt to resume
	}
	if got := have + n; got != f.Size || hex.EncodeToString(hash.Sum(nil)) != f.SHA256 {
		os.Remove(partial)
		return fmt.Errorf("verification failed (%d bytes, expected %d with sha256 %s…): discarded", got, f.Size, f.SHA256[:12])
	}
	os.Chmod(partial, 0o444) // a read-only mirror
	// Renamed whole into place; made durable once, after all downloads (see flush).
	dest := filepath.Join(p.dir, "server", filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	if err := os.Rename(partial, dest); err != nil {
		return err
	}
	fi, err := os.Stat(dest)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.state.Files[f.Path] = fileState{Size: fi.Size(), MTime: fi.ModTime(), SHA256: f.SHA256}
	p.written = append(p.written, f.Path)
	p.dirs[filepath.Dir(dest)] = true
	p.mu.Unlock()
	return nil
}

// flush makes the downloads and their renames durable before the state records them. Until
// the state is saved, a file it does not list is hashed by the next pull, so a crash before
// flush costs a download, never a wrong file. One flush per pull instead of an fsync per file
// is what lets a first pull of many files keep pace with rsync (which syncs nothing).
func (p *puller) flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.written) == 0 {
		return nil
	}
	files := make([]string, len(p.written))
	for i, rel := range p.written {
		files[i] = filepath.Join(p.dir, "server", filepath.FromSlash(rel))
	}
	err := syncTree(p.dir, files, p.dirs)
	if err != nil {
		for _, rel := range p.written {
			delete(p.state.Files, rel) // not known to be on disk: the next pull hashes them
		}
	}
	p.written, p.dirs = nil, map[string]bool{}
	return err
}

// barWriter counts what passes through on the progress bar.
type barWriter struct {
	w   io.Writer
	bar *mpb.Bar
}

func (b barWriter) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	b.bar.IncrBy(n)
	return n, err
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func statePath(dir string) string { return filepath.Join(dir, ".analyst", "state.json") }

// loadState reads the client's memory of its mirror; a missing or broken one only costs hashing.
func loadState(dir string) (state, []byte) {
	st := state{Files: map[string]fileState{}}
	b, err := os.ReadFile(statePath(dir))
	if err == nil {
		json.Unmarshal(b, &st)
	}
	if st.Files == nil {
		st.Files = map[string]fileState{}
	}
	return st, b
}

func (p *puller) saveState() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := json.Marshal(p.state)
	if err != nil || bytes.Equal(b, p.saved) {
		return err
	}
	if err := store.WriteFileAtomic(statePath(p.dir), 0o600, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return err
	}
	p.saved = b
	return nil
}

// workspaceFiles writes CLAUDE.md from the server's template and .claude/settings.json, each
// only when its content changed.
func (p *puller) workspaceFiles(view *workspace.View) error {
	tmpl, err := os.ReadFile(filepath.Join(p.dir, "server", "workspace", workspace.ClaudeTemplate))
	if err == nil {
		var tables []workspace.Table
		tables = append(tables, view.Tables...)
		out, err := workspace.Render(tmpl, workspace.Data{Instance: view.Instance, User: view.User, Dir: p.dir,
			DuckDB: filepath.Join(p.dir, "user", "duckdb", "analytics.duckdb"), Tables: tables})
		if err != nil {
			return fmt.Errorf("CLAUDE.md template from the server: %w", err)
		}
		if err := writeIfChanged(filepath.Join(p.dir, "CLAUDE.md"), out); err != nil {
			return err
		}
	}
	settings, err := os.ReadFile(filepath.Join(p.dir, "server", "workspace", workspace.ClaudeSettings))
	if err == nil {
		return writeIfChanged(filepath.Join(p.dir, ".claude", "settings.json"), settings)
	}
	return nil
}

func writeIfChanged(p string, b []byte) error {
	if old, err := os.ReadFile(p); err == nil && string(old) == string(b) {
		return nil
	}
	return store.WriteFileAtomic(p, 0o644, func(w io.Writer) error { _, err := w.Write(b); return err })
}
