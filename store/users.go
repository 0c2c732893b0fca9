package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Roles, from least to most rights.
const (
	RoleAnalyst    = "analyst"    // public tables (and tables granted to them)
	RolePrivileged = "privileged" // also private tables
	RoleAdmin      = "admin"      // everything, and administration
)

// ValidRole reports whether role is one of the three roles.
func ValidRole(role string) bool {
	return role == RoleAnalyst || role == RolePrivileged || role == RoleAdmin
}

var (
	bucketUsers  = []byte("state.users")  // email -> User JSON
	bucketTokens = []byte("state.tokens") // sha256(token) hex -> Token JSON
	bucketGrants = []byte("state.grants") // table name -> []email JSON
)

// User is a person (or automation) known to the instance.
type User struct {
	Email    string          `json:"email"`
	Name     string          `json:"name,omitempty"`
	Role     string          `json:"role"`
	Disabled bool            `json:"disabled,omitempty"`
	Created  time.Time       `json:"created"`
	Datasets map[string]bool `json:"datasets,omitempty"` // optional datasets the user opted into
}

// Token is an API token; only its hash is kept.
type Token struct {
	ID       string     `json:"id"` // first 12 hex digits of the hash: shown, used to revoke
	Email    string     `json:"email"`
	Name     string     `json:"name,omitempty"`
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
}

// Users keeps users, API tokens and table grants in the instance's bbolt file.
type Users struct{ db *bolt.DB }

// NewUsers opens the user records.
func NewUsers(db *bolt.DB) (*Users, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketTokens, bucketGrants} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &Users{db: db}, err
}

// NormalizeEmail checks and lower-cases an email address.
func NormalizeEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email {
		return "", fmt.Errorf("%q is not an email address", email)
	}
	return email, nil
}

// Add creates a user, or changes the role of an existing one.
func (u *Users) Add(email, role string) (*User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if !ValidRole(role) {
		return nil, fmt.Errorf("role %q: must be analyst, privileged or admin", role)
	}
	var user *User
	err = u.db.Update(func(tx *bolt.Tx) error {
		user, err = getUser(tx, email)
		if errors.Is(err, ErrNotFound) {
			user, err = &User{Email: email, Created: time.Now().UTC()}, nil
		}
		if err != nil {
			return err
		}
		user.Role = role
		return putJSON(tx, bucketUsers, email, user)
	})
	return user, err
}

// Get returns a user.
func (u *Users) Get(email string) (*User, error) {
	var user *User
	err := u.db.View(func(tx *bolt.Tx) error {
		var err error
		user, err = getUser(tx, strings.ToLower(strings.TrimSpace(email)))
		return err
	})
	return user, err
}

// List returns every user, by email.
func (u *Users) List() ([]*User, error) {
	var users []*User
	err := u.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var user User
			if err := json.Unmarshal(v, &user); err != nil {
				return err
			}
			users = append(users, &user)
			return nil
		})
	})
	return users, err
}

// Update changes a user in one transaction.
func (u *Users) Update(email string, fn func(*User) error) (*User, error) {
	var user *User
	err := u.db.Update(func(tx *bolt.Tx) error {
		var err error
		if user, err = getUser(tx, strings.ToLower(email)); err != nil {
			return err
		}
		if err := fn(user); err != nil {
			return err
		}
		return putJSON(tx, bucketUsers, user.Email, user)
	})
	return user, err
}

// Remove deletes a user with their tokens and grants.
func (u *Users) Remove(email string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	return u.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, email); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsers).Delete([]byte(email)); err != nil {
			return err
		}
		if err := deleteTokens(tx, email, ""); err != nil {
			return err
		}
		return tx.Bucket(bucketGrants).ForEach(func(k, v []byte) error {
			var emails []string
			json.Unmarshal(v, &emails)
			return putJSON(tx, bucketGrants, string(k), without(emails, email))
		})
	})
}

// CreateToken makes a new API token for a user and returns it in plain text, once.
func (u *Users) CreateToken(email, name string) (string, *Token, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, err
	}
	plain := "ada_" + base64.RawURLEncoding.EncodeToString(secret)
	tok, err := u.AddToken(email, name, plain)
	return plain, tok, err
}

// AddToken stores a token chosen by the caller (ANALYST_ADMIN_TOKEN); only its hash is kept.
func (u *Users) AddToken(email, name, plain string) (*Token, error) {
	if len(plain) < 16 {
		return nil, errors.New("a token needs at least 16 characters")
	}
	hash := tokenHash(plain)
	tok := &Token{ID: hash[:12], Email: strings.ToLower(email), Name: name, Created: time.Now().UTC()}
	err := u.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, tok.Email); err != nil {
			return err
		}
		return putJSON(tx, bucketTokens, hash, tok)
	})
	return tok, err
}

// Authenticate returns the enabled user a token belongs to.
func (u *Users) Authenticate(plain string) (*User, *Token, error) {
	hash := tokenHash(plain)
	var user *User
	var tok Token
	err := u.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get([]byte(hash))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &tok); err != nil {
			return err
		}
		var err error
		user, err = getUser(tx, tok.Email)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("invalid token: %w", ErrNotFound)
	}
	if user.Disabled {
		return nil, nil, fmt.Errorf("user %s is disabled: %w", user.Email, ErrNotFound)
	}
	// Last use is recorded at most once a minute, so reads stay reads.
	if now := time.Now().UTC(); tok.LastUsed == nil || now.Sub(*tok.LastUsed) > time.Minute {
		tok.LastUsed = &now
		u.db.Update(func(tx *bolt.Tx) error { return putJSON(tx, bucketTokens, hash, &tok) })
	}
	return user, &tok, nil
}

// Tokens lists a user's tokens (all users' when email is "").
func (u *Users) Tokens(email string) ([]*Token, error) {
	var toks []*Token
	err := u.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var tok Token
			if err := json.Unmarshal(v, &tok); err != nil {
				return err
			}
			if email == "" || tok.Email == strings.ToLower(email) {
				toks = append(toks, &tok)
			}
			return nil
		})
	})
	sort.Slice(toks, func(i, j int) bool { return toks[i].Created.Before(toks[j].Created) })
	return toks, err
}

// RevokeToken deletes a user's token by id.
func (u *Users) RevokeToken(email, id string) error {
	return u.db.Update(func(tx *bolt.Tx) error { return deleteTokens(tx, strings.ToLower(email), id) })
}

// deleteTokens removes email's tokens: the one with id, or all of them when id is "".
func deleteTokens(tx *bolt.Tx, email, id string) error {
	b := tx.Bucket(bucketTokens)
	var doomed [][]byte
	b.ForEach(func(k, v []byte) error {
		var tok Token
		if json.Unmarshal(v, &tok) == nil && tok.Email == email && (id == "" || tok.ID == id) {
			doomed = append(doomed, append([]byte(nil), k...))
		}
		return nil
	})
	if id != "" && len(doomed) == 0 {
		return fmt.Errorf("token %s of %s: %w", id, email, ErrNotFound)
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Grant lets a user see a table that is otherwise private.
func (u *Users) Grant(table, email string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	return u.db.Update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, email); err != nil {
			return err
		}
		var emails []string
		if v := tx.Bucket(bucketGrants).Get([]byte(table)); v != nil {
			json.Unmarshal(v, &emails)
		}
		return putJSON(tx, bucketGrants, table, append(without(emails, email), email))
	})
}

// Revoke takes a grant back.
func (u *Users) Revoke(table, email string) error {
	return u.db.Update(func(tx *bolt.Tx) error {
		var emails []string
		if v := tx.Bucket(bucketGrants).Get([]byte(table)); v != nil {
			json.Unmarshal(v, &emails)
		}
		return putJSON(tx, bucketGrants, table, without(emails, strings.ToLower(email)))
	})
}

// Granted reports whether table was granted to email.
func (u *Users) Granted(table, email string) bool {
	found := false
	u.db.View(func(tx *bolt.Tx) error {
		var emails []string
		if v := tx.Bucket(bucketGrants).Get([]byte(table)); v != nil {
			json.Unmarshal(v, &emails)
		}
		for _, e := range emails {
			found = found || e == email
		}
		return nil
	})
	return found
}

func tokenHash(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

func getUser(tx *bolt.Tx, email string) (*User, error) {
	v := tx.Bucket(bucketUsers).Get([]byte(email))
	if v == nil {
		return nil, fmt.Errorf("user %s: %w", email, ErrNotFound)
	}
	var user User
	return &user, json.Unmarshal(v, &user)
}

func putJSON(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}

func without(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
