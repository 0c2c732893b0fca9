package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrInUse is returned when another process holds the store.
var ErrInUse = errors.New("store in use")

// OpenDB opens the instance's bbolt file (event log and application state) for this process
// alone. bbolt allows one process per file; a second one gets ErrInUse within a second, with the
// PID of the holder, instead of waiting forever.
func OpenDB(path string) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true, // the freelist is rebuilt at open; commits write less
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		holder := "another process"
		if b, rerr := os.ReadFile(pidFile(path)); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = "PID " + strconv.Itoa(pid)
			}
		}
		return nil, fmt.Errorf("%w: the store %s is in use by %s; use --server or stop it", ErrInUse, path, holder)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := os.WriteFile(pidFile(path), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// CloseDB closes the store and removes its PID file.
func CloseDB(db *bolt.DB) error {
	path := db.Path()
	err := db.Close()
	os.Remove(pidFile(path))
	return err
}

func pidFile(dbPath string) string { return dbPath + ".pid" }
