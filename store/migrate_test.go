package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func schemaVersionOf(t *testing.T, db *bolt.DB) int {
	t.Helper()
	var v int
	db.View(func(tx *bolt.Tx) error { v = StoredSchemaVersion(tx); return nil })
	return v
}

// A store written by the first release (no version recorded) opens, is stamped with the
// current version, and keeps its runs and users.
func TestMigrateUnversionedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "analyst.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	runs, _ := NewRuns(db)
	users, _ := NewUsers(db)
	if _, err := runs.Create("r1", "manual", []string{"orders"}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.Add("ann@example.com", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	CloseDB(db)

	db, err = OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseDB(db)
	if v := schemaVersionOf(t, db); v != 0 {
		t.Fatalf("an unversioned store reads as version %d, want 0", v)
	}
	from, err := Migrate(db, nil)
	if err != nil || from != 0 {
		t.Fatalf("Migrate: from %d, %v", from, err)
	}
	if v := schemaVersionOf(t, db); v != SchemaVersion() {
		t.Fatalf("version after migration %d, want %d", v, SchemaVersion())
	}
	runs, _ = NewRuns(db)
	users, _ = NewUsers(db)
	if r, err := runs.Get("r1"); err != nil || r.Tables[0].Name != "orders" {
		t.Fatalf("run lost: %v %+v", err, r)
	}
	if u, err := users.Get("ann@example.com"); err != nil || u.Role != RoleAdmin {
		t.Fatalf("user lost: %v %+v", err, u)
	}
	// A second start has nothing to do.
	if from, err := Migrate(db, nil); err != nil || from != SchemaVersion() {
		t.Fatalf("second Migrate: from %d, %v", from, err)
	}
}

// Migrations run in order, each with its version bump in one transaction: a failing one
// leaves the store at the version before it, with none of its changes.
func TestMigrateStepsAndFailure(t *testing.T) {
	db, err := OpenDB(filepath.Join(t.TempDir(), "analyst.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer CloseDB(db)
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte("old.names"))
		return b.Put([]byte("k"), []byte("Value"))
	})
	boom := errors.New("boom")
	// Migration 2 moves old.names to new.names, lower-casing the values.
	list := []Migration{
		{Version: 1, Name: "baseline", Up: func(*bolt.Tx) error { return nil }},
		{Version: 2, Name: "rename bucket", Up: func(tx *bolt.Tx) error {
			old := tx.Bucket([]byte("old.names"))
			nb, err := tx.CreateBucket([]byte("new.names"))
			if err != nil {
				return err
			}
			if err := old.ForEach(func(k, v []byte) error { return nb.Put(k, bytes.ToLower(v)) }); err != nil {
				return err
			}
			return tx.DeleteBucket([]byte("old.names"))
		}},
	}
	failing := append(list, Migration{Version: 3, Name: "fails", Up: func(tx *bolt.Tx) error {
		tx.Bucket([]byte("new.names")).Put([]byte("half"), []byte("done"))
		return boom
	}})

	if _, err := migrate(db, failing, nil); !errors.Is(err, boom) {
		t.Fatalf("want the migration's error, got %v", err)
	}
	if v := schemaVersionOf(t, db); v != 2 {
		t.Fatalf("version %d after a failed third migration, want 2", v)
	}
	db.View(func(tx *bolt.Tx) error {
		nb := tx.Bucket([]byte("new.names"))
		if tx.Bucket([]byte("old.names")) != nil || nb == nil || string(nb.Get([]byte("k"))) != "value" {
			t.Fatal("migration 2 not applied")
		}
		if nb.Get([]byte("half")) != nil {
			t.Fatal("the failed migration left a change behind")
		}
		return nil
	})

	// Fixed, it runs from where the store stopped.
	fixed := append(list, Migration{Version: 3, Name: "fixed", Up: func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("new.names")).Put([]byte("v3"), []byte("yes"))
	}})
	if from, err := migrate(db, fixed, nil); err != nil || from != 2 {
		t.Fatalf("from %d, %v", from, err)
	}
	if v := schemaVersionOf(t, db); v != 3 {
		t.Fatalf("version %d, want 3", v)
	}

	// An older binary refuses the newer store instead of guessing.
	if _, err := migrate(db, list, nil); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("want ErrNewerSchema, got %v", err)
	}
	if _, err := migrate(db, []Migration{{Version: 2, Name: "gap", Up: list[0].Up}}, nil); err == nil {
		t.Fatal("a registry with a gap must be rejected")
	}
}
