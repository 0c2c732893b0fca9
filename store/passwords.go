package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketPasswords = []byte("state.passwords") // email -> Password JSON

// Password is the password of an external (email + password) user, as a PHC string
// ($argon2id$v=19$m=...,t=...,p=...$salt$hash). Hashing is the portal's job.
type Password struct {
	Hash      string     `json:"hash"`
	Updated   time.Time  `json:"updated"`
	LastLogin *time.Time `json:"last_login,omitempty"`
}

// Passwords keeps password hashes in the instance's bbolt file.
type Passwords struct{ db *bolt.DB }

// NewPasswords opens the password records.
func NewPasswords(db *bolt.DB) (*Passwords, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketPasswords)
		return err
	})
	return &Passwords{db: db}, err
}

// Set stores a new hash for email.
func (p *Passwords) Set(email, hash string) error {
	rec := &Password{Hash: hash, Updated: time.Now().UTC()}
	return p.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx, bucketPasswords, strings.ToLower(strings.TrimSpace(email)), rec)
	})
}

// Get returns email's password record, or ErrNotFound.
func (p *Passwords) Get(email string) (*Password, error) {
	var rec Password
	err := p.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPasswords).Get([]byte(strings.ToLower(strings.TrimSpace(email))))
		if v == nil {
			return fmt.Errorf("password of %s: %w", email, ErrNotFound)
		}
		return json.Unmarshal(v, &rec)
	})
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// RecordLogin notes a successful sign-in, replacing the hash when newHash is not empty
// (rehashing with current parameters).
func (p *Passwords) RecordLogin(email, newHash string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	return p.db.Update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPasswords).Get([]byte(email))
		if v == nil {
			return fmt.Errorf("password of %s: %w", email, ErrNotFound)
		}
		var rec Password
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		now := time.Now().UTC()
		rec.LastLogin = &now
		if newHash != "" {
			rec.Hash, rec.Updated = newHash, now
		}
		return putJSON(tx, bucketPasswords, email, &rec)
	})
}

// Delete removes email's password (the user can set one again through a setup link).
func (p *Passwords) Delete(email string) error {
	return p.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPasswords).Delete([]byte(strings.ToLower(strings.TrimSpace(email))))
	})
}
