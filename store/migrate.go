package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"
)

// Schema versions of the bbolt store. The version is kept in the "meta" bucket; a store
// written before versioning existed has none and counts as version 0.
//
// To change how something is stored: append a Migration with the next number to migrations,
// and make it turn the previous layout into the new one inside the given transaction. Never
// edit or renumber a migration that has shipped.

var (
	bucketMeta       = []byte("meta")
	keySchemaVersion = []byte("schema_version")
)

// Migration upgrades the store from Version-1 to Version.
type Migration struct {
	Version int
	Name    string
	Up      func(tx *bolt.Tx) error
}

// migrations is the registry, in order: migrations[i].Version == i+1.
var migrations = []Migration{
	{Version: 1, Name: "record the schema version", Up: func(*bolt.Tx) error {
		// Version 1 is the layout of the first release (log.*, state.* buckets); stores
		// written before versioning already have it, so only the version is new.
		return nil
	}},
}

// SchemaVersion is the store layout this binary writes.
func SchemaVersion() int { return len(migrations) }

// ErrNewerSchema means the store was written by a newer binary; opening it could lose data.
var ErrNewerSchema = errors.New("store written by a newer version")

// Migrate brings the store to SchemaVersion. Each migration runs in its own transaction
// together with the version bump, so a failed one leaves the store at the previous version.
// It returns the version the store had before.
func Migrate(db *bolt.DB, logger *slog.Logger) (from int, err error) {
	return migrate(db, migrations, logger)
}

// StoredSchemaVersion reads the store's schema version (0 when it has none).
func StoredSchemaVersion(tx *bolt.Tx) int {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(keySchemaVersion)
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

func migrate(db *bolt.DB, list []Migration, logger *slog.Logger) (int, error) {
	if logger == nil {
		logger = slog.Default()
	}
	for i, m := range list {
		if m.Version != i+1 {
			return 0, fmt.Errorf("migration %q has version %d, want %d", m.Name, m.Version, i+1)
		}
	}
	var from int
	if err := db.View(func(tx *bolt.Tx) error { from = StoredSchemaVersion(tx); return nil }); err != nil {
		return 0, err
	}
	if from > len(list) {
		return from, fmt.Errorf("%w: %s has schema version %d, this binary knows up to %d; upgrade the binary or restore a backup",
			ErrNewerSchema, db.Path(), from, len(list))
	}
	for _, m := range list[from:] {
		err := db.Update(func(tx *bolt.Tx) error {
			if err := m.Up(tx); err != nil {
				return err
			}
			b, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			return b.Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, uint64(m.Version)))
		})
		if err != nil {
			return from, fmt.Errorf("store migration %d (%s): %w", m.Version, m.Name, err)
		}
		logger.Info("store migrated", "version", m.Version, "migration", m.Name)
	}
	return from, nil
}
