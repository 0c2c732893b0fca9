package portal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"go.yaml.in/yaml/v3"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
	"github.com/ai-data-analyst/analyst/workspace"
)

// Limits of what analysts push.
const (
	maxPushChunk     = 8 << 20  // one POST
	maxSessionFile   = 64 << 20 // one session transcript
	maxSessionFiles  = 2000     // transcripts per user
	maxClaudeLocal   = 1 << 20  // CLAUDE.local.md
	maxCatalogueDocs = 16 << 20 // a catalogue or metric file read to filter it
)

// distribution serves the analyst's pull (GET /api/manifest, GET /api/files/{path}) and push.
// It keeps the stored manifest in memory (reloaded when the file changes) and the hashes of
// files that changed since the last publish, so no request hashes a file twice.
type distribution struct {
	*server

	mu          sync.Mutex
	manifest    *store.Manifest
	manifestKey string                         // size and mtime of manifest.json when loaded
	live        map[string]store.ManifestEntry // entries newer than the stored manifest's

	pushMu sync.Mutex // appends of one process to data/users/
}

func (s *server) distributionRoutes(api *mux.Router) {
	d := &distribution{server: s, live: map[string]store.ManifestEntry{}}
	api.Handle("/manifest", signedIn(d.getManifest)).Methods(http.MethodGet)
	api.Handle("/files/{path:.+}", signedIn(d.getFile)).Methods(http.MethodGet, http.MethodHead)
	api.Handle("/push/sessions", signedIn(d.listSessions)).Methods(http.MethodGet)
	api.Handle("/push/sessions/{name}", signedIn(d.pushSession)).Methods(http.MethodPost)
	api.Handle("/push/claude-local", signedIn(d.pushClaudeLocal)).Methods(http.MethodPost)
}

// getManifest returns the caller's view: the tables in their workspace with their files, the
// docs and metadata they may read (filtered), and the workspace templates.
func (d *distribution) getManifest(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	files, err := store.ScanPublished(d.Config)
	if err != nil {
		d.fail(w, err)
		return
	}
	stored, err := d.stored()
	if err != nil {
		d.fail(w, err)
		return
	}
	view := workspace.View{Version: stored.Version, Instance: d.Config.Instance.Instance.Name, User: user.Email,
		Tables: []workspace.Table{}, Files: []workspace.File{}}
	rows := map[string]int64{}
	for _, f := range files {
		e, _, ok, err := d.resolve(user, f, nil, stored)
		if errors.Is(err, fs.ErrNotExist) {
			continue // replaced or removed since the scan
		}
		if err != nil {
			d.fail(w, err)
			return
		}
		if !ok {
			continue
		}
		view.Files = append(view.Files, workspace.File{Path: e.Path, Size: e.Size, SHA256: e.SHA256, Table: e.Table,
			Partition: e.Partition, Rows: e.Rows, Schema: e.Schema})
		rows[e.Table] += e.Rows
	}
	tmpls, err := workspace.Templates(d.Config.Paths.ConfigDir)
	if err != nil {
		d.fail(w, err)
		return
	}
	for name, b := range tmpls {
		sum := sha256.Sum256(b)
		view.Files = append(view.Files, workspace.File{Path: "workspace/" + name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	if err := d.addRules(user, &view); err != nil {
		d.fail(w, err)
		return
	}
	sort.Slice(view.Files, func(i, j int) bool { return view.Files[i].Path < view.Files[j].Path })
	for _, t := range d.Config.Catalogue.Tables {
		if n, ok := rows[t.Name]; ok {
			view.Tables = append(view.Tables, workspace.Table{Name: t.Name, Folder: t.Folder, Description: t.Description,
				Partitioned: t.IsPartitioned(), Dataset: t.Dataset, Rows: n})
		}
	}
	writeJSON(w, http.StatusOK, view)
}

// getFile streams one file of the caller's view with its sha256 as ETag, honouring Range,
// If-Range and If-None-Match. Anything outside the view is a 404, whatever the reason.
func (d *distribution) getFile(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	p := mux.Vars(r)["path"]
	notFound := func() { writeError(w, http.StatusNotFound, "not found") }
	if name, ok := strings.CutPrefix(p, "rules/"); ok {
		d.serveRule(w, r, user, name)
		return
	}
	if name, ok := strings.CutPrefix(p, "workspace/"); ok {
		tmpls, err := workspace.Templates(d.Config.Paths.ConfigDir)
		if err != nil {
			d.fail(w, err)
			return
		}
		b, ok := tmpls[name]
		if !ok {
			notFound()
			return
		}
		sum := sha256.Sum256(b)
		serveBytes(w, r, name, hex.EncodeToString(sum[:]), b)
		return
	}
	f, ok := store.PublishedAt(d.Config, p)
	if !ok {
		notFound()
		return
	}
	fh, err := os.Open(f.Abs)
	if err != nil {
		notFound()
		return
	}
	defer fh.Close()
	stored, err := d.stored()
	if err != nil {
		d.fail(w, err)
		return
	}
	e, content, ok, err := d.resolve(user, f, fh, stored)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !ok) {
		notFound()
		return
	}
	if err != nil {
		d.fail(w, err)
		return
	}
	if content != nil {
		serveBytes(w, r, path.Base(p), e.SHA256, content)
		return
	}
	w.Header().Set("ETag", `"`+e.SHA256+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "private, no-cache")
	// The open file itself (renames never change its content) lets the kernel send it (sendfile).
	http.ServeContent(w, r, "", e.ModTime, fh)
}

func serveBytes(w http.ResponseWriter, r *http.Request, name, sha string, b []byte) {
	w.Header().Set("ETag", `"`+sha+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "private, no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

// resolve decides whether user may have file f and describes it. Catalogue docs and metrics are
// filtered per user, so their content (and hash) is returned in content. fh, when given, is the
// already opened file (so the bytes served are the bytes hashed).
func (d *distribution) resolve(user *store.User, f store.PublishedFile, fh *os.File, stored *store.Manifest) (e store.ManifestEntry, content []byte, ok bool, err error) {
	top, rest, _ := strings.Cut(f.Path, "/")
	switch top {
	case "parquet":
		t, found := d.Config.Catalogue.Table(f.Table)
		if !found || !d.Policy.InWorkspace(user, t) {
			return e, nil, false, nil
		}
	case "metadata":
		if !d.metadataAllowed(user, rest) {
			return e, nil, false, nil
		}
	case "docs":
		content, ok, err = d.filteredDoc(user, f, rest)
		if err != nil || !ok {
			return e, nil, false, err
		}
		sum := sha256.Sum256(content)
		return store.ManifestEntry{Path: f.Path, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}, content, true, nil
	default:
		return e, nil, false, nil
	}
	e, err = d.entry(f, fh, stored)
	return e, nil, err == nil, err
}

// metadataAllowed: the shared files to everyone; private/ only to who may see every private
// table (the files describe them all); datasets/<ds>/ to who has that dataset in their workspace.
func (d *distribution) metadataAllowed(user *store.User, rel string) bool {
	parts := strings.Split(rel, "/")
	switch {
	case len(parts) == 1:
		return true
	case parts[0] == "private":
		for _, t := range d.Config.Catalogue.Tables {
			if d.Config.IsPrivate(t) && !d.Policy.CanSee(user, t) {
				return false
			}
		}
		return true
	case parts[0] == "datasets":
		in := false
		for _, t := range d.Config.Catalogue.Tables {
			if t.Dataset == parts[1] && !d.Config.IsPrivate(t) {
				if !d.Policy.InWorkspace(user, t) {
					return false
				}
				in = true
			}
		}
		return in
	}
	return false
}

// filteredDoc reads a doc as user may see it. A catalogue file loses the YAML entries of the
// tables outside the user's workspace (a file left with none of its tables is not served); a
// metric is served only when every catalogued table it uses is in the workspace.
func (d *distribution) filteredDoc(user *store.User, f store.PublishedFile, rel string) ([]byte, bool, error) {
	fh, err := os.Open(f.Abs)
	if err != nil {
		return nil, false, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxCatalogueDocs+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > maxCatalogueDocs {
		return nil, false, fmt.Errorf("%s is larger than %d bytes", f.Abs, maxCatalogueDocs)
	}
	if strings.HasPrefix(rel, "metrics/") {
		for _, name := range metricTables(b) {
			if t, ok := d.Config.Catalogue.Table(name); ok && !d.Policy.InWorkspace(user, t) {
				return nil, false, nil
			}
		}
		return b, true, nil
	}
	display, err := filepath.Rel(d.Config.Paths.Home, f.Abs)
	if err != nil {
		return nil, false, err
	}
	var hidden []config.Table
	defined := 0
	for _, t := range d.Config.Catalogue.Tables {
		if t.File == filepath.ToSlash(display) {
			defined++
			if !d.Policy.InWorkspace(user, t) {
				hidden = append(hidden, t)
			}
		}
	}
	if defined > 0 && len(hidden) == defined {
		return nil, false, nil
	}
	return redactTables(b, hidden), true, nil
}

// redactTables removes the YAML list items that define tables (found by the line each table's
// definition starts on): the item's line and every following line indented deeper than its "-",
// blank and comment lines included.
func redactTables(doc []byte, tables []config.Table) []byte {
	if len(tables) == 0 {
		return doc
	}
	lines := strings.SplitAfter(string(doc), "\n")
	drop := make([]bool, len(lines))
	for _, t := range tables {
		i := t.Line - 1
		if i < 0 || i >= len(lines) {
			continue
		}
		l := lines[i]
		indent := len(l) - len(strings.TrimLeft(l, " "))
		if dash := strings.Index(l, "- "); dash >= 0 && strings.TrimSpace(l[:dash]) == "" {
			indent = dash
		}
		drop[i] = true
		for j := i + 1; j < len(lines); j++ {
			s := strings.TrimRight(lines[j], "\r\n")
			trimmed := strings.TrimLeft(s, " ")
			if trimmed != "" && !strings.HasPrefix(trimmed, "#") && len(s)-len(trimmed) <= indent {
				break
			}
			drop[j] = true
		}
	}
	var out strings.Builder
	for i, l := range lines {
		if !drop[i] {
			out.WriteString(l)
		}
	}
	return []byte(out.String())
}

// metricTables lists the tables a metric file names (`table:` or `tables:`, in one mapping or
// a list of them). An unreadable file names a table no one has, so it is served to no one.
func metricTables(b []byte) []string {
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return []string{"\x00unreadable"}
	}
	var out []string
	var visit func(v any)
	visit = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, x := range v {
				visit(x)
			}
		case map[string]any:
			if s, ok := v["table"].(string); ok {
				out = append(out, s)
			}
			if l, ok := v["tables"].([]any); ok {
				for _, x := range l {
					if s, ok := x.(string); ok {
						out = append(out, s)
					}
				}
			}
		}
	}
	visit(doc)
	return out
}

// entry describes a file as it is on disk now, reusing the stored manifest's or an earlier
// request's hash when the size and modification time are unchanged.
func (d *distribution) entry(f store.PublishedFile, fh *os.File, stored *store.Manifest) (store.ManifestEntry, error) {
	d.mu.Lock()
	prev, ok := d.live[f.Path]
	d.mu.Unlock()
	if !ok {
		prev, ok = stored.Lookup(f.Path)
	}
	var prevp *store.ManifestEntry
	if ok {
		prevp = &prev
	}
	var e store.ManifestEntry
	var err error
	if fh != nil {
		e, err = store.EntryForOpen(f, fh, prevp)
	} else {
		e, err = store.EntryFor(f, prevp)
	}
	if err != nil {
		return e, err
	}
	if !ok || prev != e {
		d.mu.Lock()
		d.live[f.Path] = e
		d.mu.Unlock()
	}
	return e, nil
}

// stored returns the manifest the publish stage wrote, reloading it when the file changed.
func (d *distribution) stored() (*store.Manifest, error) {
	p := store.ManifestPath(d.Config)
	key := ""
	if fi, err := os.Stat(p); err == nil {
		key = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.manifest != nil && key == d.manifestKey {
		return d.manifest, nil
	}
	m, err := store.LoadManifest(p)
	if err != nil {
		return nil, err
	}
	d.manifest, d.manifestKey = m, key
	d.live = map[string]store.ManifestEntry{}
	return m, nil
}

// --- push: the analyst's session transcripts and CLAUDE.local.md, kept per user, append-only.

var sessionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.jsonl$`)

func (d *distribution) userDir(user *store.User) string {
	return filepath.Join(d.Config.Paths.DataDir, "users", url.PathEscape(user.Email))
}

// listSessions returns the size the server holds of each of the caller's transcripts.
func (d *distribution) listSessions(w http.ResponseWriter, r *http.Request) {
	sizes, err := d.sessionSizes(UserFrom(r.Context()))
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": sizes})
}

func (d *distribution) sessionSizes(user *store.User) (map[string]int64, error) {
	sizes := map[string]int64{}
	entries, err := os.ReadDir(filepath.Join(d.userDir(user), "sessions"))
	if errors.Is(err, fs.ErrNotExist) {
		return sizes, nil
	}
	for _, e := range entries {
		if info, ierr := e.Info(); ierr == nil && sessionName.MatchString(e.Name()) {
			sizes[e.Name()] = info.Size()
		}
	}
	return sizes, err
}

// pushSession appends the body to a transcript at ?offset=, which must be the size the server
// holds (else 409 with that size): transcripts only grow, and a retried append is harmless.
func (d *distribution) pushSession(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	name := mux.Vars(r)["name"]
	if !sessionName.MatchString(name) {
		writeError(w, http.StatusBadRequest, "a session file is named like 2024-05-01_abc.jsonl")
		return
	}
	offset, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || offset < 0 {
		writeError(w, http.StatusBadRequest, "offset must be the size the server holds")
		return
	}
	d.pushMu.Lock()
	defer d.pushMu.Unlock()
	sizes, err := d.sessionSizes(user)
	if err != nil {
		d.fail(w, err)
		return
	}
	have, exists := sizes[name]
	if !exists && len(sizes) >= maxSessionFiles {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("at most %d session files per user", maxSessionFiles))
		return
	}
	if offset != have {
		writeJSON(w, http.StatusConflict, map[string]any{"error": "offset does not match the size the server holds", "size": have})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPushChunk))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("one push carries at most %d bytes", maxPushChunk))
		return
	}
	if have+int64(len(body)) > maxSessionFile {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a session file may grow to %d bytes", maxSessionFile))
		return
	}
	p := filepath.Join(d.userDir(user), "sessions", name)
	if err := appendFile(p, body); err != nil {
		d.fail(w, err)
		return
	}
	d.Logger.Info("session pushed", "user", user.Email, "file", name, "bytes", len(body))
	writeJSON(w, http.StatusOK, map[string]any{"size": have + int64(len(body))})
}

func appendFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pushClaudeLocal keeps every distinct version of the caller's CLAUDE.local.md: a new one is
// added under claude-local/ (never overwriting) and CLAUDE.local.md is the latest.
func (d *distribution) pushClaudeLocal(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r.Context())
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxClaudeLocal))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("CLAUDE.local.md may have at most %d bytes", maxClaudeLocal))
		return
	}
	d.pushMu.Lock()
	defer d.pushMu.Unlock()
	latest := filepath.Join(d.userDir(user), "CLAUDE.local.md")
	if old, err := os.ReadFile(latest); err == nil && bytes.Equal(old, body) {
		writeJSON(w, http.StatusOK, map[string]any{"stored": false})
		return
	}
	sum := sha256.Sum256(body)
	version := filepath.Join(d.userDir(user), "claude-local", time.Now().UTC().Format("20060102T150405Z")+"-"+hex.EncodeToString(sum[:4])+".md")
	for _, p := range []string{version, latest} {
		if err := store.WriteFileAtomic(p, 0o640, func(w io.Writer) error { _, err := w.Write(body); return err }); err != nil {
			d.fail(w, err)
			return
		}
	}
	if d.Memory != nil {
		d.Memory.NotesChanged(user.Email)
	}
	writeJSON(w, http.StatusOK, map[string]any{"stored": true})
}
