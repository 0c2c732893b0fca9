package ops

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force replaces an existing store and files. The Parquet, metadata and raw trees it
	// replaces are kept beside them as <tree>.pre-restore-<time> for the admin to delete.
	Force bool
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Info  *BackupInfo
	Files int
	Kept  []string // previous trees moved aside
}

// trees are replaced whole, so no file from after the backup mixes with restored ones.
var trees = []string{"data/parquet", "data/metadata", "data/raw"}

// Restore unpacks an archive into the instance laid out by p. The server must be stopped.
// Everything is unpacked and verified in a staging folder first; only a complete, intact
// archive whose store this binary can read is moved into place (data first, config last).
func Restore(r io.Reader, p config.Paths, opts RestoreOptions) (*RestoreResult, error) {
	if _, err := os.Stat(p.Store); err == nil {
		db, err := store.OpenDB(p.Store)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err) // ErrInUse: the server runs
		}
		store.CloseDB(db)
		if !opts.Force {
			return nil, fmt.Errorf("restore: %s already exists; use --force to replace this instance's state", p.Store)
		}
	}
	if err := os.MkdirAll(p.DataDir, 0o750); err != nil {
		return nil, err
	}
	staging, err := os.MkdirTemp(p.DataDir, ".restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)

	var names []string
	info, err := readArchive(r, func(name string, hdr *tar.Header, body io.Reader) error {
		dst := filepath.Join(staging, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(hdr.Mode)&0o777)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
		os.Chtimes(dst, hdr.ModTime, hdr.ModTime)
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkStore(filepath.Join(staging, filepath.FromSlash(storeName))); err != nil {
		return nil, err
	}

	target := func(name string) string {
		switch {
		case strings.HasPrefix(name, "data/"):
			return filepath.Join(p.DataDir, filepath.FromSlash(strings.TrimPrefix(name, "data/")))
		case strings.HasPrefix(name, "config/"):
			return filepath.Join(p.ConfigDir, filepath.FromSlash(strings.TrimPrefix(name, "config/")))
		case strings.HasPrefix(name, "docs/"):
			return filepath.Join(p.DocsDir, filepath.FromSlash(strings.TrimPrefix(name, "docs/")))
		}
		return filepath.Join(p.Home, filepath.FromSlash(name))
	}
	inTree := func(name string) string {
		for _, t := range trees {
			if strings.HasPrefix(name, t+"/") {
				return t
			}
		}
		return ""
	}
	staged := map[string]bool{}
	var files []string
	for _, n := range names {
		if t := inTree(n); t != "" {
			staged[t] = true
		} else if n != storeName {
			files = append(files, n)
		}
	}
	if !opts.Force {
		var exist []string
		for _, n := range files {
			if _, err := os.Lstat(target(n)); err == nil {
				exist = append(exist, target(n))
			}
		}
		for t := range staged {
			if entries, err := os.ReadDir(target(t)); err == nil && len(entries) > 0 {
				exist = append(exist, target(t))
			}
		}
		if len(exist) > 0 {
			sort.Strings(exist)
			return nil, fmt.Errorf("restore: %s already exist(s); use --force to replace", strings.Join(exist, ", "))
		}
	}

	res := &RestoreResult{Info: info, Files: len(names) + 1} // + BACKUP.json
	stamp := time.Now().UTC().Format("20060102T150405")
	for _, t := range trees {
		if !staged[t] {
			continue
		}
		dst := target(t)
		if _, err := os.Lstat(dst); err == nil {
			kept := dst + ".pre-restore-" + stamp
			if err := os.Rename(dst, kept); err != nil {
				return res, err
			}
			res.Kept = append(res.Kept, kept)
		}
		if err := move(filepath.Join(staging, filepath.FromSlash(t)), dst); err != nil {
			return res, err
		}
	}
	if err := move(filepath.Join(staging, filepath.FromSlash(storeName)), p.Store); err != nil {
		return res, err
	}
	// Config last: its appearance is what makes the folder an instance.
	sort.SliceStable(files, func(i, j int) bool {
		return !strings.HasPrefix(files[i], "config/") && strings.HasPrefix(files[j], "config/")
	})
	for _, n := range files {
		if err := move(filepath.Join(staging, filepath.FromSlash(n)), target(n)); err != nil {
			return res, err
		}
	}
	return res, nil
}

// checkStore opens the unpacked store read-only: its pages must be consistent and its schema
// one this binary can migrate.
func checkStore(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("restore: the archived store does not open: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var damage error
		for err := range tx.Check() { // drained whole: the checker goroutine ends with the channel
			if damage == nil {
				damage = err
			}
		}
		if damage != nil {
			return fmt.Errorf("restore: the archived store is damaged: %w", damage)
		}
		if v := store.StoredSchemaVersion(tx); v > store.SchemaVersion() {
			return fmt.Errorf("restore: %w: the archive's store has schema version %d, this binary knows up to %d",
				store.ErrNewerSchema, v, store.SchemaVersion())
		}
		return nil
	})
}

// move renames src over dst, or copies when they are on different filesystems.
func move(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	err := os.Rename(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		return copyTree(src, dst)
	}
	if err != nil {
		return err
	}
	return store.SyncDir(filepath.Dir(dst))
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		return store.WriteFileAtomic(out, st.Mode().Perm(), func(w io.Writer) error {
			_, err := io.Copy(w, in)
			return err
		})
	})
}
