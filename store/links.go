package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketLinks = []byte("state.links") // sha256(token) hex -> Link JSON

// Purposes of one-time links.
const (
	LinkSetup = "setup" // set a first password (24 h)
	LinkReset = "reset" // reset a password (1 h)
	LinkLogin = "login" // open a portal session (10 min), like Jupyter's token URL
)

// Link is a single-use link sent to (or printed for) a user. Only the token's hash is stored.
type Link struct {
	Purpose string    `json:"purpose"`
	Email   string    `json:"email"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Links keeps one-time links in the instance's bbolt file.
type Links struct{ db *bolt.DB }

// NewLinks opens the link records.
func NewLinks(db *bolt.DB) (*Links, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketLinks)
		return err
	})
	return &Links{db: db}, err
}

// Create makes a link of purpose for email valid for ttl and returns its token, once. An older
// link of the same purpose for the same email stops working, and expired links are dropped.
func (l *Links) Create(email, purpose string, ttl time.Duration) (string, error) {
	token, err := randomToken()
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	link := &Link{Purpose: purpose, Email: strings.ToLower(strings.TrimSpace(email)), Created: now, Expires: now.Add(ttl)}
	return token, l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLinks)
		var doomed [][]byte
		b.ForEach(func(k, v []byte) error {
			var old Link
			if json.Unmarshal(v, &old) != nil || now.After(old.Expires) || (old.Email == link.Email && old.Purpose == purpose) {
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return putJSON(tx, bucketLinks, tokenHash(token), link)
	})
}

// Check returns the link behind token without using it up: ErrNotFound when it does not
// exist (or was used), ErrExpired when it is too old.
func (l *Links) Check(token, purpose string) (*Link, error) {
	var link *Link
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		link, err = getLink(tx, token, purpose)
		return err
	})
	return link, err
}

// Consume returns the link behind token and deletes it, so it works once.
func (l *Links) Consume(token, purpose string) (*Link, error) {
	var link *Link
	err := l.db.Update(func(tx *bolt.Tx) error {
		var err error
		link, err = getLink(tx, token, purpose)
		if err == nil || link != nil {
			if derr := tx.Bucket(bucketLinks).Delete([]byte(tokenHash(token))); derr != nil {
				return derr
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return link, nil
}

func getLink(tx *bolt.Tx, token, purpose string) (*Link, error) {
	v := tx.Bucket(bucketLinks).Get([]byte(tokenHash(token)))
	if v == nil {
		return nil, fmt.Errorf("link: %w", ErrNotFound)
	}
	var link Link
	if err := json.Unmarshal(v, &link); err != nil {
		return nil, err
	}
	if link.Purpose != purpose {
		return nil, fmt.Errorf("link: %w", ErrNotFound)
	}
	if time.Now().After(link.Expires) {
		return &link, fmt.Errorf("link of %s: %w", link.Email, ErrExpired)
	}
	return &link, nil
}
