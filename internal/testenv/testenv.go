// Package testenv holds what the tests of several packages need alike: files written into a
// temporary instance, the instance's store opened for one test, and a log buffer that a test can
// read while other goroutines or a child process write to it. Only tests import it.
package testenv

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// WriteFile writes content to path, creating its folders.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// OpenStore opens the bbolt store at path (an instance's cfg.Paths.Store) and closes it when
// the test ends.
func OpenStore(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := store.OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.CloseDB(db) })
	return db
}

// Call sends an API request with a bearer token and returns the status and the body.
func Call(t testing.TB, method, url, token string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// SyncBuffer is a bytes.Buffer safe to write from several goroutines while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Instance writes files (paths relative to a new temporary home: config/instance.yaml,
// docs/data_description.md, source files...) and loads the instance.
func Instance(t testing.TB, files map[string]string) *config.Config {
	t.Helper()
	home := t.TempDir()
	for rel, content := range files {
		WriteFile(t, filepath.Join(home, filepath.FromSlash(rel)), content)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
