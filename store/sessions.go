package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketSessions = []byte("state.sessions") // sha256(session id) hex -> Session JSON
	bucketSecrets  = []byte("state.secrets")  // name -> random bytes generated on first use
)

// Session is a signed-in portal session. The cookie carries its id; only the id's hash is
// stored, so the store alone cannot be used to forge a cookie. Deleting the record revokes the
// session at once, whatever the cookie says.
type Session struct {
	Email    string    `json:"email"`
	Method   string    `json:"method"` // google, password, link
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
}

// Sessions keeps portal sessions in the instance's bbolt file.
type Sessions struct{ db *bolt.DB }

// NewSessions opens the session records.
func NewSessions(db *bolt.DB) (*Sessions, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketSecrets} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &Sessions{db: db}, err
}

// Create starts a session for email and returns its id, to be put in the cookie.
func (s *Sessions) Create(email, method string) (string, *Session, error) {
	id, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	now := time.Now().UTC()
	sess := &Session{Email: strings.ToLower(email), Method: method, Created: now, LastSeen: now}
	err = s.db.Update(func(tx *bolt.Tx) error { return putJSON(tx, bucketSessions, tokenHash(id), sess) })
	return id, sess, err
}

// Get returns the session with id, or ErrNotFound when it was revoked or never existed.
func (s *Sessions) Get(id string) (*Session, error) {
	var sess Session
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get([]byte(tokenHash(id)))
		if v == nil {
			return fmt.Errorf("session: %w", ErrNotFound)
		}
		return json.Unmarshal(v, &sess)
	})
	if err != nil {
		return nil, err
	}
	return &sess, nil
}

// Touch records activity on a session (for its idle expiry).
func (s *Sessions) Touch(id string, at time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		key := tokenHash(id)
		v := tx.Bucket(bucketSessions).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("session: %w", ErrNotFound)
		}
		var sess Session
		if err := json.Unmarshal(v, &sess); err != nil {
			return err
		}
		sess.LastSeen = at.UTC()
		return putJSON(tx, bucketSessions, key, &sess)
	})
}

// Delete revokes one session (sign-out).
func (s *Sessions) Delete(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSessions).Delete([]byte(tokenHash(id))) })
}

// DeleteUser revokes every session of email (user disabled or removed, password reset) and
// returns how many there were.
func (s *Sessions) DeleteUser(email string) (int, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	return s.deleteWhere(func(sess *Session) bool { return sess.Email == email })
}

// Purge removes sessions created before created or idle since before idle.
func (s *Sessions) Purge(created, idle time.Time) (int, error) {
	return s.deleteWhere(func(sess *Session) bool { return sess.Created.Before(created) || sess.LastSeen.Before(idle) })
}

// Count returns how many sessions email has ("" for all).
func (s *Sessions) Count(email string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			var sess Session
			if json.Unmarshal(v, &sess) == nil && (email == "" || sess.Email == strings.ToLower(email)) {
				n++
			}
			return nil
		})
	})
	return n, err
}

func (s *Sessions) deleteWhere(match func(*Session) bool) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var doomed [][]byte
		b.ForEach(func(k, v []byte) error {
			var sess Session
			if json.Unmarshal(v, &sess) != nil || match(&sess) {
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}

// Secret returns the instance's random secret called name, creating it (size bytes) on first
// use. It signs and encrypts cookies when auth.webapp_secret_key is not configured, so sessions
// survive restarts without a known default key.
func (s *Sessions) Secret(name string, size int) ([]byte, error) {
	var secret []byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		if v := b.Get([]byte(name)); len(v) == size {
			secret = append([]byte(nil), v...)
			return nil
		}
		secret = make([]byte, size)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		return b.Put([]byte(name), secret)
	})
	return secret, err
}

// randomToken is 32 random bytes, base64url without padding (43 characters).
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ErrExpired is returned for a one-time link past its validity.
var ErrExpired = errors.New("expired")
