package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Corporate memory state: knowledge items, votes, consent and the collector's progress per user.
var (
	bucketMemoryItems    = []byte("memory.items")    // item id -> MemoryItem JSON
	bucketMemoryVotes    = []byte("memory.votes")    // email \x00 item id -> "-1" | "1"
	bucketMemoryConsent  = []byte("memory.consent")  // email -> MemoryConsent JSON
	bucketMemoryProgress = []byte("memory.progress") // email -> MemoryProgress JSON
	bucketMemoryMeta     = []byte("memory.meta")     // "last_collection" -> RFC 3339 time
)

// Statuses of a knowledge item.
const (
	MemoryPublished = "published" // passed the sensitivity check or approved: listed, votable, delivered
	MemoryPending   = "pending"   // held back for an admin's review (sensitivity check failed or erred)
	MemoryRejected  = "rejected"  // an admin said no; kept so the collector does not bring it back
)

// MemoryItem is one piece of shared knowledge distilled from analysts' notes.
type MemoryItem struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Content     string    `json:"content"`
	Category    string    `json:"category"`
	Tags        []string  `json:"tags"`
	SourceUsers []string  `json:"source_users"`
	Status      string    `json:"status"`
	Hold        string    `json:"hold,omitempty"` // why the item is pending
	Mandatory   bool      `json:"mandatory,omitempty"`
	EditedBy    string    `json:"edited_by,omitempty"` // an admin's edit: the collector no longer rewrites the text
	ExtractedAt time.Time `json:"extracted_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// MemoryConsent records whether a user's notes may be mined.
type MemoryConsent struct {
	Consent bool      `json:"consent"`
	At      time.Time `json:"at"`
}

// MemoryProgress is what the collector knows of one user's notes: the hash it last distilled
// and, after failures, when it may try again.
type MemoryProgress struct {
	Hash        string    `json:"hash,omitempty"`
	CollectedAt time.Time `json:"collected_at,omitzero"`
	Failures    int       `json:"failures,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
}

// Memory keeps the corporate memory in the instance's bbolt file.
type Memory struct{ db *bolt.DB }

// NewMemory opens the corporate memory records.
func NewMemory(db *bolt.DB) (*Memory, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMemoryItems, bucketMemoryVotes, bucketMemoryConsent, bucketMemoryProgress, bucketMemoryMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &Memory{db: db}, err
}

// Item returns one item, or ErrNotFound.
func (m *Memory) Item(id string) (MemoryItem, error) {
	var it MemoryItem
	err := m.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx, bucketMemoryItems, []byte(id), &it)
		if err == nil && !ok {
			err = fmt.Errorf("memory item %s: %w", id, ErrNotFound)
		}
		return err
	})
	return it, err
}

// Items returns every item, by id.
func (m *Memory) Items() ([]MemoryItem, error) {
	var out []MemoryItem
	err := m.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMemoryItems).ForEach(func(_, v []byte) error {
			var it MemoryItem
			if err := json.Unmarshal(v, &it); err != nil {
				return err
			}
			out = append(out, it)
			return nil
		})
	})
	return out, err
}

// PutItem writes an item.
func (m *Memory) PutItem(it MemoryItem) error {
	return m.db.Update(func(tx *bolt.Tx) error { return putJSON(tx, bucketMemoryItems, it.ID, it) })
}

// UpdateItem changes an item in one transaction; ErrNotFound when there is none.
func (m *Memory) UpdateItem(id string, fn func(*MemoryItem) error) (MemoryItem, error) {
	var it MemoryItem
	err := m.db.Update(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx, bucketMemoryItems, []byte(id), &it)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("memory item %s: %w", id, ErrNotFound)
		}
		if err := fn(&it); err != nil {
			return err
		}
		return putJSON(tx, bucketMemoryItems, id, it)
	})
	return it, err
}

// DeleteItem removes an item and every vote on it.
func (m *Memory) DeleteItem(id string) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMemoryItems).Delete([]byte(id)); err != nil {
			return err
		}
		votes := tx.Bucket(bucketMemoryVotes)
		var keys [][]byte
		votes.ForEach(func(k, _ []byte) error {
			if _, item, _ := strings.Cut(string(k), "\x00"); item == id {
				keys = append(keys, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range keys {
			if err := votes.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetVote records a user's vote on an item: -1, 1, or 0 to remove it.
func (m *Memory) SetVote(email, id string, vote int) error {
	if vote < -1 || vote > 1 {
		return fmt.Errorf("a vote is -1, 0 or 1, not %d", vote)
	}
	return m.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMemoryItems).Get([]byte(id)) == nil {
			return fmt.Errorf("memory item %s: %w", id, ErrNotFound)
		}
		k := userKey(email, id)
		if vote == 0 {
			return tx.Bucket(bucketMemoryVotes).Delete(k)
		}
		return tx.Bucket(bucketMemoryVotes).Put(k, []byte(fmt.Sprint(vote)))
	})
}

// Votes returns every vote: email -> item id -> -1 | 1.
func (m *Memory) Votes() (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	err := m.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMemoryVotes).ForEach(func(k, v []byte) error {
			email, id, _ := strings.Cut(string(k), "\x00")
			if out[email] == nil {
				out[email] = map[string]int{}
			}
			out[email][id] = voteValue(v)
			return nil
		})
	})
	return out, err
}

// UserVotes returns one user's votes: item id -> -1 | 1.
func (m *Memory) UserVotes(email string) (map[string]int, error) {
	out := map[string]int{}
	prefix := []byte(email + "\x00")
	err := m.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMemoryVotes).Cursor()
		for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
			out[string(k[len(prefix):])] = voteValue(v)
		}
		return nil
	})
	return out, err
}

func voteValue(v []byte) int {
	if string(v) == "-1" {
		return -1
	}
	return 1
}

// Consent returns whether a user agreed to have their notes mined (no record: no).
func (m *Memory) Consent(email string) (MemoryConsent, error) {
	var c MemoryConsent
	err := m.db.View(func(tx *bolt.Tx) error {
		_, err := getJSON(tx, bucketMemoryConsent, []byte(email), &c)
		return err
	})
	return c, err
}

// SetConsent records a user's consent.
func (m *Memory) SetConsent(email string, consent bool, now time.Time) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx, bucketMemoryConsent, email, MemoryConsent{Consent: consent, At: now.UTC()})
	})
}

// Progress returns the collector's record of every user.
func (m *Memory) Progress() (map[string]MemoryProgress, error) {
	out := map[string]MemoryProgress{}
	err := m.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMemoryProgress).ForEach(func(k, v []byte) error {
			var p MemoryProgress
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			out[string(k)] = p
			return nil
		})
	})
	return out, err
}

// SetProgress records the collector's progress for a user; an empty record deletes it.
func (m *Memory) SetProgress(email string, p MemoryProgress) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		if p == (MemoryProgress{}) {
			return tx.Bucket(bucketMemoryProgress).Delete([]byte(email))
		}
		return putJSON(tx, bucketMemoryProgress, email, p)
	})
}

// LastCollection is when the collector last finished a run (zero: never).
func (m *Memory) LastCollection() (time.Time, error) {
	var t time.Time
	err := m.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMemoryMeta).Get([]byte("last_collection")); v != nil {
			return t.UnmarshalText(v)
		}
		return nil
	})
	return t, err
}

// SetLastCollection records when the collector finished a run.
func (m *Memory) SetLastCollection(t time.Time) error {
	b, err := t.UTC().MarshalText()
	if err != nil {
		return err
	}
	return m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMemoryMeta).Put([]byte("last_collection"), b) })
}
