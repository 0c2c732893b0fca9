package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/ai-data-analyst/analyst/config"
)

// The manifest lists every file analysts mirror, under a path relative to their server/ folder:
//
//	parquet/<folder>/<name>.parquet, parquet/<folder>/<name>/<partition>.parquet
//	metadata/schema.yml, metadata/profiles.json, metadata/private/..., metadata/datasets/<ds>/...
//	docs/data_description.md, docs/datasets/*.md, docs/metrics/**.yml
//
// It lives in data/metadata/manifest.json, written atomically by the publish stage alone (one
// writer); readers load it and refresh it in memory against the disk, so a reader never waits
// for the pipeline and never writes.

// ManifestEntry is one published file.
type ManifestEntry struct {
	Path      string    `json:"path"` // relative to the mirror, slash-separated
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	ModTime   time.Time `json:"mtime"`
	Table     string    `json:"table,omitempty"`
	Partition string    `json:"partition,omitempty"`
	Rows      int64     `json:"rows,omitempty"`
	Schema    string    `json:"schema,omitempty"` // fingerprint of the Parquet schema (names and types)
}

// Manifest is a version of the published files, sorted by path.
type Manifest struct {
	Version uint64          `json:"version"`
	Updated time.Time       `json:"updated"`
	Files   []ManifestEntry `json:"files"`
}

// PublishedFile is a file on the server that belongs in the manifest.
type PublishedFile struct {
	Path      string // manifest path
	Abs       string // where it is on disk
	Table     string // for Parquet files
	Partition string // partition key of a partitioned table's file
}

// ManifestPath is where an instance keeps its manifest.
func ManifestPath(cfg *config.Config) string {
	return filepath.Join(cfg.Paths.Metadata, "manifest.json")
}

// LoadManifest reads a manifest; a missing file is the empty version 0.
func LoadManifest(p string) (*Manifest, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &Manifest{}, nil
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &m, nil
}

// Lookup returns the entry of a path.
func (m *Manifest) Lookup(p string) (ManifestEntry, bool) {
	i := sort.Search(len(m.Files), func(i int) bool { return m.Files[i].Path >= p })
	if i < len(m.Files) && m.Files[i].Path == p {
		return m.Files[i], true
	}
	return ManifestEntry{}, false
}

// Refresh returns the manifest of files as they are on disk now, reusing the hashes, row counts
// and schemas of m's entries whose size and modification time are unchanged. changed says
// whether the result differs from m; its Version is m's (the writer bumps it). A file that
// vanished meanwhile is left out.
func (m *Manifest) Refresh(files []PublishedFile) (*Manifest, bool, error) {
	out := &Manifest{Version: m.Version, Updated: m.Updated, Files: make([]ManifestEntry, 0, len(files))}
	for _, f := range files {
		var prev *ManifestEntry
		if e, ok := m.Lookup(f.Path); ok {
			prev = &e
		}
		e, err := EntryFor(f, prev)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		out.Files = append(out.Files, e)
	}
	sort.Slice(out.Files, func(i, j int) bool { return out.Files[i].Path < out.Files[j].Path })
	changed := len(out.Files) != len(m.Files)
	for i := 0; !changed && i < len(out.Files); i++ {
		changed = !sameEntry(out.Files[i], m.Files[i])
	}
	return out, changed, nil
}

// sameEntry compares what analysts see of an entry (a touched but identical file is no change).
func sameEntry(a, b ManifestEntry) bool {
	return a.Path == b.Path && a.Size == b.Size && a.SHA256 == b.SHA256 && a.Table == b.Table &&
		a.Partition == b.Partition && a.Rows == b.Rows && a.Schema == b.Schema
}

// EntryFor describes a file, reusing prev when the file's size and modification time are
// unchanged. Hashing streams the file; a Parquet file's row count and schema come from its footer.
func EntryFor(f PublishedFile, prev *ManifestEntry) (ManifestEntry, error) {
	if prev != nil && prev.SHA256 != "" {
		fi, err := os.Stat(f.Abs)
		if err != nil {
			return ManifestEntry{}, err
		}
		if fi.Size() == prev.Size && fi.ModTime().Equal(prev.ModTime) {
			e := *prev
			e.Path, e.Table, e.Partition = f.Path, f.Table, f.Partition
			return e, nil
		}
	}
	fh, err := os.Open(f.Abs)
	if err != nil {
		return ManifestEntry{}, err
	}
	defer fh.Close()
	return EntryForOpen(f, fh, prev)
}

// EntryForOpen is EntryFor on an open file (which is read from the start when it must be hashed).
func EntryForOpen(f PublishedFile, fh *os.File, prev *ManifestEntry) (ManifestEntry, error) {
	fi, err := fh.Stat()
	if err != nil {
		return ManifestEntry{}, err
	}
	e := ManifestEntry{Path: f.Path, Size: fi.Size(), ModTime: fi.ModTime().UTC(), Table: f.Table, Partition: f.Partition}
	if prev != nil && prev.Size == e.Size && prev.ModTime.Equal(e.ModTime) && prev.SHA256 != "" {
		e.SHA256, e.Rows, e.Schema = prev.SHA256, prev.Rows, prev.Schema
		return e, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(fh, 0, e.Size)); err != nil {
		return e, fmt.Errorf("hash %s: %w", f.Abs, err)
	}
	e.SHA256 = hex.EncodeToString(h.Sum(nil))
	if f.Table != "" && strings.HasSuffix(f.Path, ".parquet") {
		if e.Rows, e.Schema, err = parquetFacts(f.Abs); err != nil {
			return e, err
		}
	}
	return e, nil
}

// parquetFacts reads a Parquet footer: the row count and a fingerprint of the schema.
func parquetFacts(p string) (int64, string, error) {
	r, err := file.OpenParquetFile(p, false)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", p, err)
	}
	defer r.Close()
	md := r.MetaData()
	sc, err := pqarrow.FromParquet(md.Schema, &pqarrow.ArrowReadProperties{}, md.KeyValueMetadata())
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", p, err)
	}
	h := sha256.New()
	for _, fd := range sc.Fields() {
		fmt.Fprintf(h, "%s\x00%s\x00%t\n", fd.Name, fd.Type, fd.Nullable)
	}
	return md.NumRows, hex.EncodeToString(h.Sum(nil))[:16], nil
}

// UpdateManifest refreshes the manifest at p against files and, when anything changed, writes
// it atomically as the next version. It returns the current manifest. Only one process (the
// publish stage) may call it.
func UpdateManifest(p string, files []PublishedFile, now time.Time) (*Manifest, bool, error) {
	old, err := LoadManifest(p)
	if err != nil {
		return nil, false, err
	}
	m, changed, err := old.Refresh(files)
	if err != nil || !changed {
		return m, false, err
	}
	m.Version = old.Version + 1
	m.Updated = now.UTC()
	err = WriteFileAtomic(p, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(m)
	})
	return m, err == nil, err
}

// metadataNames are the metadata files analysts get, wherever they are under data/metadata
// (top level, private/, datasets/<ds>/).
var metadataNames = map[string]bool{"schema.yml": true, "profiles.json": true}

// ScanPublished lists the files the manifest covers, as they are on disk now: each catalogued
// table's Parquet, the schema and profile files, and the catalogue and metric docs.
func ScanPublished(cfg *config.Config) ([]PublishedFile, error) {
	var out []PublishedFile
	for _, t := range cfg.Catalogue.Tables {
		base := filepath.Join(cfg.Paths.Parquet, t.Folder, t.Name)
		rel := path.Join("parquet", t.Folder, t.Name)
		if !t.IsPartitioned() {
			if _, err := os.Stat(base + ".parquet"); err == nil {
				out = append(out, PublishedFile{Path: rel + ".parquet", Abs: base + ".parquet", Table: t.Name})
			}
			continue
		}
		parts, err := partitionFiles(base)
		if err != nil {
			return nil, err
		}
		for key, abs := range parts {
			out = append(out, PublishedFile{Path: rel + "/" + key + ".parquet", Abs: abs, Table: t.Name, Partition: key})
		}
	}
	walk := func(root, prefix string, keep func(rel string) bool) error {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && p != root {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil // temp files of atomic writes
			}
			if d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if keep(rel) {
				out = append(out, PublishedFile{Path: prefix + "/" + rel, Abs: p})
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := walk(cfg.Paths.Metadata, "metadata", func(rel string) bool { return MetadataPublished(rel) }); err != nil {
		return nil, err
	}
	if err := walk(cfg.Paths.DocsDir, "docs", func(rel string) bool { return DocPublished(rel) }); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// MetadataPublished says whether a file under data/metadata (slash path) is mirrored to analysts.
func MetadataPublished(rel string) bool {
	parts := strings.Split(rel, "/")
	if !metadataNames[parts[len(parts)-1]] {
		return false
	}
	switch {
	case len(parts) == 1:
		return true
	case len(parts) == 2:
		return parts[0] == "private"
	case len(parts) == 3:
		return parts[0] == "datasets"
	}
	return false
}

// DocPublished says whether a file under docs/ (slash path) is mirrored to analysts: the
// catalogue (data_description.md, datasets/*.md) and the metric definitions (metrics/**.yml).
func DocPublished(rel string) bool {
	switch {
	case rel == "data_description.md":
		return true
	case strings.HasPrefix(rel, "datasets/"):
		return strings.Count(rel, "/") == 1 && strings.HasSuffix(rel, ".md")
	case strings.HasPrefix(rel, "metrics/"):
		return strings.HasSuffix(rel, ".yml") || strings.HasSuffix(rel, ".yaml")
	}
	return false
}

// PublishedAt resolves a manifest path to its file on disk, or reports that no such path can be
// published (a traversal, an unknown table, a file that is not mirrored). It does not check that
// the file exists.
func PublishedAt(cfg *config.Config, p string) (PublishedFile, bool) {
	if p == "" || path.Clean(p) != p || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return PublishedFile{}, false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." || strings.HasPrefix(seg, ".") {
			return PublishedFile{}, false
		}
	}
	top, rest, _ := strings.Cut(p, "/")
	switch top {
	case "metadata":
		if MetadataPublished(rest) {
			return PublishedFile{Path: p, Abs: filepath.Join(cfg.Paths.Metadata, filepath.FromSlash(rest))}, true
		}
	case "docs":
		if DocPublished(rest) {
			return PublishedFile{Path: p, Abs: filepath.Join(cfg.Paths.DocsDir, filepath.FromSlash(rest))}, true
		}
	case "parquet":
		for _, t := range cfg.Catalogue.Tables {
			base := path.Join(t.Folder, t.Name)
			abs := filepath.Join(cfg.Paths.Parquet, filepath.FromSlash(rest))
			if !t.IsPartitioned() && rest == base+".parquet" {
				return PublishedFile{Path: p, Abs: abs, Table: t.Name}, true
			}
			if key, ok := strings.CutPrefix(rest, base+"/"); ok && t.IsPartitioned() && !strings.Contains(key, "/") && strings.HasSuffix(key, ".parquet") {
				return PublishedFile{Path: p, Abs: abs, Table: t.Name, Partition: strings.TrimSuffix(key, ".parquet")}, true
			}
		}
	}
	return PublishedFile{}, false
}
