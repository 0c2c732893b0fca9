package store

import (
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketLoads = []byte("state.loads") // table id -> InitialLoad JSON

// InitialLoad is the progress of a table's chunked first load. It is kept per table, not per
// run, so a load interrupted by a crash (or a failed chunk) continues where it stopped.
type InitialLoad struct {
	Anchor time.Time `json:"anchor"` // "now" of the load: every chunk window is computed from it
	Next   int       `json:"next"`   // first chunk not yet extracted
	Chunks int       `json:"chunks"`
}

// InitialLoad returns the table's load in progress, if any.
func (r *Runs) InitialLoad(tableID string) (InitialLoad, bool, error) {
	var l InitialLoad
	found := false
	err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLoads)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(tableID))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &l)
	})
	return l, found, err
}

// SetInitialLoad records progress; a nil load clears it.
func (r *Runs) SetInitialLoad(tableID string, l *InitialLoad) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketLoads)
		if err != nil {
			return err
		}
		if l == nil {
			return b.Delete([]byte(tableID))
		}
		v, err := json.Marshal(l)
		if err != nil {
			return err
		}
		return b.Put([]byte(tableID), v)
	})
}
