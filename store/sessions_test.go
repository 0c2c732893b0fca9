package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestSessionsRevocation(t *testing.T) {
	db, err := OpenDB(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer CloseDB(db)
	s, _ := NewSessions(db)
	id1, _, err := s.Create("Ann@Example.com", "google")
	if err != nil {
		t.Fatal(err)
	}
	id2, _, _ := s.Create("ann@example.com", "password")
	id3, _, _ := s.Create("bob@example.com", "link")
	if sess, err := s.Get(id1); err != nil || sess.Email != "ann@example.com" || sess.Method != "google" {
		t.Fatalf("get: %+v %v", sess, err)
	}
	if _, err := s.Get("forged"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if err := s.Delete(id1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted session must be gone: %v", err)
	}
	if n, err := s.DeleteUser("ANN@example.com"); err != nil || n != 1 {
		t.Fatalf("delete user: %d %v", n, err)
	}
	if _, err := s.Get(id2); !errors.Is(err, ErrNotFound) {
		t.Fatal("disabling a user must revoke all their sessions")
	}
	if _, err := s.Get(id3); err != nil {
		t.Fatal("other users' sessions stay")
	}
	if err := s.Touch(id3, time.Now().Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Purge(time.Now().Add(-12*time.Hour), time.Now().Add(-2*time.Hour)); n != 1 {
		t.Fatalf("an idle session must be purged, purged %d", n)
	}
	a, _ := s.Secret("cookie", 64)
	b, _ := s.Secret("cookie", 64)
	if len(a) != 64 || string(a) != string(b) {
		t.Fatal("the secret must be created once and kept")
	}
}

func TestLinksSingleUseAndExpiry(t *testing.T) {
	db, err := OpenDB(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer CloseDB(db)
	l, _ := NewLinks(db)
	tok, err := l.Create("ann@example.com", LinkSetup, time.Hour)
	if err != nil || len(tok) != 43 {
		t.Fatalf("create: %q %v", tok, err)
	}
	if _, err := l.Check(tok, LinkReset); !errors.Is(err, ErrNotFound) {
		t.Fatal("a setup link must not work as a reset link")
	}
	if link, err := l.Check(tok, LinkSetup); err != nil || link.Email != "ann@example.com" {
		t.Fatalf("check: %v", err)
	}
	if _, err := l.Consume(tok, LinkSetup); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Consume(tok, LinkSetup); !errors.Is(err, ErrNotFound) {
		t.Fatal("a link must work once")
	}
	old, _ := l.Create("ann@example.com", LinkReset, time.Hour)
	newer, _ := l.Create("ann@example.com", LinkReset, time.Hour)
	if _, err := l.Check(old, LinkReset); !errors.Is(err, ErrNotFound) {
		t.Fatal("a newer link replaces the older one")
	}
	if _, err := l.Check(newer, LinkReset); err != nil {
		t.Fatal(err)
	}
	expired, _ := l.Create("bob@example.com", LinkLogin, -time.Second)
	if _, err := l.Consume(expired, LinkLogin); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestAllowlistAndPasswords(t *testing.T) {
	db, err := OpenDB(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer CloseDB(db)
	a, _ := NewAllowlist(db)
	if _, err := a.Add(AllowEmail, "Ext@Partner.io", "boss@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add(AllowDomain, "@Acme.COM", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add(AllowDomain, "not a domain", ""); err == nil {
		t.Fatal("a bad domain must be refused")
	}
	if !a.Has(AllowEmail, "ext@partner.io") || !a.Has(AllowDomain, "acme.com") || a.Has(AllowEmail, "x@partner.io") {
		t.Fatal("has")
	}
	list, _ := a.List()
	if len(list) != 2 || list[0].Kind != AllowDomain {
		t.Fatalf("list: %+v", list)
	}
	if err := a.Remove(AllowEmail, "ext@partner.io"); err != nil || a.Has(AllowEmail, "ext@partner.io") {
		t.Fatalf("remove: %v", err)
	}
	p, _ := NewPasswords(db)
	if _, err := p.Get("ext@partner.io"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	p.Set("Ext@partner.io", "$argon2id$x")
	if err := p.RecordLogin("ext@partner.io", "$argon2id$y"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := p.Get("ext@partner.io"); rec.Hash != "$argon2id$y" || rec.LastLogin == nil {
		t.Fatalf("record: %+v", rec)
	}
}
