package jira

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/store"
)

var keyPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*-[0-9]+$`)

// ValidKey reports whether s looks like an issue key (PROJ-123); only such keys become file
// names.
func ValidKey(s string) bool { return len(s) <= 255 && keyPattern.MatchString(s) }

// RawStore keeps the last fetched state of every issue as Dir/<KEY>.json. A deleted issue keeps
// its file as a tombstone (_deleted_at), a moved one names its new key (_moved_to).
type RawStore struct{ Dir string }

// Path is the raw file of key.
func (s RawStore) Path(key string) string { return filepath.Join(s.Dir, key+".json") }

// Read loads a raw issue; the error wraps os.ErrNotExist when there is none.
func (s RawStore) Read(key string) (Issue, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("jira: bad issue key %q", key)
	}
	b, err := os.ReadFile(s.Path(key))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var issue Issue
	if err := dec.Decode(&issue); err != nil {
		return nil, fmt.Errorf("jira: %s: %w", s.Path(key), err)
	}
	return issue, nil
}

// Write stores a raw issue atomically, mode 0660 (group-shared like the reference, whose
// folders rely on POSIX ACLs that a 0600 file would lock out).
func (s RawStore) Write(key string, issue Issue) error {
	if !ValidKey(key) {
		return fmt.Errorf("jira: bad issue key %q", key)
	}
	return store.WriteFileAtomic(s.Path(key), 0o660, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(issue)
	})
}

// Keys lists the stored issue keys, sorted.
func (s RawStore) Keys() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range entries {
		if k, ok := strings.CutSuffix(e.Name(), ".json"); ok && ValidKey(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// SyncedAt formats the _synced_at stamp: naive UTC with microseconds, as the reference wrote it.
func SyncedAt(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }
