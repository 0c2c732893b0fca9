package ops

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
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

	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// A backup is a gzipped tar, written in one pass so it can stream over HTTP:
//
//	BACKUP.json          what this is (format, time, instance, state only or not, store schema)
//	data/analyst.db      the bbolt store, copied inside one read transaction (bbolt's hot backup)
//	config/..., docs/..., .env
//	data/parquet/..., data/metadata/..., data/raw/...   (not with StateOnly)
//	SHA256SUMS           the hash of every file above, last, so a truncated archive is detected
//
// Names in the archive are the default layout; Restore maps data/ and config/ to DATA_DIR and
// CONFIG_DIR of the target. The archive holds .env: it is as secret as the .env itself.
const (
	backupFormat = 1
	infoName     = "BACKUP.json"
	sumsName     = "SHA256SUMS"
	storeName    = "data/analyst.db"
)

// BackupInfo is the archive's BACKUP.json.
type BackupInfo struct {
	Format        int       `json:"format"`
	Created       time.Time `json:"created"`
	Instance      string    `json:"instance,omitempty"`
	StateOnly     bool      `json:"state_only"`
	SchemaVersion int       `json:"schema_version"`
}

// BackupOptions say what goes into the archive.
type BackupOptions struct {
	StateOnly bool   // store, config and docs only; the Parquet tree can be synced again
	Instance  string // instance name, recorded in BACKUP.json
}

// BackupStats count what was written.
type BackupStats struct {
	Files int
	Bytes int64
}

// Backup writes an archive of the instance to w: a consistent copy of the store taken while it
// stays in use, then the files. Parquet and metadata files are replaced by rename, never
// rewritten in place, so each file is copied whole; files newer than the store copy are
// harmless, because the pipeline redoes unacknowledged work idempotently after a restore.
func Backup(ctx context.Context, w io.Writer, db *bolt.DB, p config.Paths, opts BackupOptions) (BackupStats, error) {
	a := newArchiveWriter(w)
	err := a.backup(ctx, db, p, opts)
	if cerr := a.close(err == nil); err == nil {
		err = cerr
	}
	return a.stats, err
}

type archiveWriter struct {
	gz    *gzip.Writer
	tw    *tar.Writer
	sums  []string
	stats BackupStats
}

func newArchiveWriter(w io.Writer) *archiveWriter {
	gz := gzip.NewWriter(w)
	return &archiveWriter{gz: gz, tw: tar.NewWriter(gz)}
}

func (a *archiveWriter) backup(ctx context.Context, db *bolt.DB, p config.Paths, opts BackupOptions) error {
	err := db.View(func(tx *bolt.Tx) error {
		info := BackupInfo{Format: backupFormat, Created: time.Now().UTC(), Instance: opts.Instance,
			StateOnly: opts.StateOnly, SchemaVersion: store.StoredSchemaVersion(tx)}
		b, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return err
		}
		if err := a.add(infoName, 0o644, int64(len(b)), info.Created, bytes.NewReader(b)); err != nil {
			return err
		}
		// tx.WriteTo copies the pages this transaction sees; writers go on meanwhile.
		return a.addFunc(storeName, 0o600, tx.Size(), info.Created, func(w io.Writer) error {
			_, err := tx.WriteTo(w)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("backup of the store: %w", err)
	}
	files := []string{filepath.Join(p.Home, ".env")}
	trees := []struct{ dir, name string }{{p.ConfigDir, "config"}, {p.DocsDir, "docs"}}
	if !opts.StateOnly {
		trees = append(trees, struct{ dir, name string }{p.Parquet, "data/parquet"},
			struct{ dir, name string }{p.Metadata, "data/metadata"}, struct{ dir, name string }{p.Raw, "data/raw"})
	}
	for _, f := range files {
		if err := a.addFile(f, path.Base(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for _, t := range trees {
		if err := a.addTree(ctx, t.dir, t.name); err != nil {
			return err
		}
	}
	return nil
}

// addTree adds every regular file under dir, skipping hidden temp files of atomic writes.
func (a *archiveWriter) addTree(ctx context.Context, dir, name string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a file renamed away while walking, or the folder does not exist yet
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if strings.Contains(d.Name(), ".tmp-") || (d.IsDir() && d.Name() == "staging") || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		err = a.addFile(p, path.Join(name, filepath.ToSlash(rel)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	return err
}

func (a *archiveWriter) addFile(src, name string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// The open file keeps its content even if a new version is renamed over its name.
	return a.add(name, st.Mode().Perm(), st.Size(), st.ModTime(), f)
}

func (a *archiveWriter) add(name string, mode fs.FileMode, size int64, mod time.Time, r io.Reader) error {
	return a.addFunc(name, mode, size, mod, func(w io.Writer) error {
		n, err := io.CopyN(w, r, size)
		if err != nil {
			return fmt.Errorf("%s: changed while being copied (%d of %d bytes): %w", name, n, size, err)
		}
		return nil
	})
}

func (a *archiveWriter) addFunc(name string, mode fs.FileMode, size int64, mod time.Time, write func(io.Writer) error) error {
	hdr := &tar.Header{Name: name, Mode: int64(mode), Size: size, ModTime: mod, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	h := sha256.New()
	if err := write(io.MultiWriter(a.tw, h)); err != nil {
		return err
	}
	a.sums = append(a.sums, hex.EncodeToString(h.Sum(nil))+"  "+name)
	a.stats.Files++
	a.stats.Bytes += size
	return nil
}

// close writes SHA256SUMS (only after a complete backup: without it the archive is invalid).
func (a *archiveWriter) close(complete bool) error {
	if complete {
		sums := []byte(strings.Join(a.sums, "\n") + "\n")
		hdr := &tar.Header{Name: sumsName, Mode: 0o644, Size: int64(len(sums)), ModTime: time.Now(), Typeflag: tar.TypeReg}
		if err := a.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := a.tw.Write(sums); err != nil {
			return err
		}
	}
	if err := a.tw.Close(); err != nil {
		return err
	}
	return a.gz.Close()
}

// Verify reads a whole archive and checks it: BACKUP.json first, every file's hash against
// SHA256SUMS, nothing missing or extra, safe names. It returns the archive's info.
func Verify(r io.Reader) (*BackupInfo, error) {
	return readArchive(r, func(name string, hdr *tar.Header, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
}

// readArchive streams an archive, handing each file to fn, and verifies it as Verify says.
func readArchive(r io.Reader, fn func(name string, hdr *tar.Header, r io.Reader) error) (*BackupInfo, error) {
	gz, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("not a backup archive (gzip): %w", err)
	}
	tr := tar.NewReader(gz)
	var info *BackupInfo
	got := map[string]string{}
	var sums []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("backup archive is damaged or truncated: %w", err)
		}
		name := hdr.Name
		if sums != nil {
			return nil, fmt.Errorf("backup archive: %s after %s", name, sumsName)
		}
		if hdr.Typeflag != tar.TypeReg || !safeName(name) {
			return nil, fmt.Errorf("backup archive: unexpected entry %q", name)
		}
		if info == nil && name != infoName {
			return nil, fmt.Errorf("backup archive: first entry is %q, want %s", name, infoName)
		}
		if name == sumsName {
			if sums, err = io.ReadAll(io.LimitReader(tr, 64<<20)); err != nil {
				return nil, fmt.Errorf("backup archive is truncated: %w", err)
			}
			continue
		}
		if _, dup := got[name]; dup {
			return nil, fmt.Errorf("backup archive: %s appears twice", name)
		}
		h := sha256.New()
		body := io.TeeReader(tr, h)
		if name == infoName {
			info = &BackupInfo{}
			if err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(info); err != nil {
				return nil, fmt.Errorf("backup archive: %s: %w", infoName, err)
			}
			if info.Format < 1 || info.Format > backupFormat {
				return nil, fmt.Errorf("backup archive format %d is not supported by this binary (up to %d)", info.Format, backupFormat)
			}
		} else if err := fn(name, hdr, body); err != nil {
			return nil, err
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return nil, fmt.Errorf("backup archive is truncated in %s: %w", name, err)
		}
		got[name] = hex.EncodeToString(h.Sum(nil))
	}
	if sums == nil {
		return nil, fmt.Errorf("backup archive is incomplete: no %s (the backup was interrupted)", sumsName)
	}
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			return nil, fmt.Errorf("backup archive: bad %s line %q", sumsName, line)
		}
		want[name] = sum
	}
	var bad []string
	for name, sum := range want {
		if got[name] != sum {
			bad = append(bad, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, fmt.Errorf("backup archive: checksum mismatch for %s", strings.Join(bad, ", "))
	}
	if _, ok := got[storeName]; !ok {
		return nil, fmt.Errorf("backup archive has no %s", storeName)
	}
	return info, nil
}

func safeName(name string) bool {
	return name != "" && !strings.HasPrefix(name, "/") && path.Clean(name) == name && name != ".." &&
		!strings.HasPrefix(name, "../") && !strings.Contains(name, "\\")
}
