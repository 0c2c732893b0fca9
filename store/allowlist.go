package store

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketAllow = []byte("state.allowlist") // "email:<address>" | "domain:<name>" -> AllowEntry JSON

// Kinds of allow-list entries.
const (
	AllowEmail  = "email"
	AllowDomain = "domain"
)

// AllowEntry admits one email address or every verified address of one domain. It is managed
// in the portal, on top of auth.allowed_domains of instance.yaml.
type AllowEntry struct {
	Kind    string    `json:"kind"`
	Value   string    `json:"value"`
	AddedBy string    `json:"added_by,omitempty"`
	Added   time.Time `json:"added"`
}

// Allowlist keeps the allow-list in the instance's bbolt file.
type Allowlist struct{ db *bolt.DB }

// NewAllowlist opens the allow-list.
func NewAllowlist(db *bolt.DB) (*Allowlist, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketAllow)
		return err
	})
	return &Allowlist{db: db}, err
}

var domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)

// NormalizeDomain checks and lower-cases a domain name (no @, no scheme).
func NormalizeDomain(d string) (string, error) {
	d = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d), "@")))
	if !domainRE.MatchString(d) {
		return "", fmt.Errorf("%q is not a domain name", d)
	}
	return d, nil
}

// Add puts an email address or a domain on the list.
func (a *Allowlist) Add(kind, value, by string) (*AllowEntry, error) {
	var err error
	switch kind {
	case AllowEmail:
		value, err = NormalizeEmail(value)
	case AllowDomain:
		value, err = NormalizeDomain(value)
	default:
		err = fmt.Errorf("allow-list kind %q: must be email or domain", kind)
	}
	if err != nil {
		return nil, err
	}
	e := &AllowEntry{Kind: kind, Value: value, AddedBy: by, Added: time.Now().UTC()}
	return e, a.db.Update(func(tx *bolt.Tx) error { return putJSON(tx, bucketAllow, kind+":"+value, e) })
}

// Remove takes an entry off the list.
func (a *Allowlist) Remove(kind, value string) error {
	key := kind + ":" + strings.ToLower(strings.TrimSpace(value))
	return a.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAllow)
		if b.Get([]byte(key)) == nil {
			return fmt.Errorf("allow-list %s: %w", key, ErrNotFound)
		}
		return b.Delete([]byte(key))
	})
}

// List returns the entries, domains first, each kind sorted.
func (a *Allowlist) List() ([]AllowEntry, error) {
	var out []AllowEntry
	err := a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAllow).ForEach(func(k, v []byte) error {
			var e AllowEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("allow-list %s: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind == AllowDomain
		}
		return out[i].Value < out[j].Value
	})
	return out, err
}

// Has reports whether the exact entry is on the list.
func (a *Allowlist) Has(kind, value string) bool {
	found := false
	a.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketAllow).Get([]byte(kind+":"+strings.ToLower(strings.TrimSpace(value)))) != nil
		return nil
	})
	return found
}
