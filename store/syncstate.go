package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// SyncState is data/metadata/sync_state.json: when each table last synced and what it holds.
// It is written in the wrapped form the portal and the analyst tools read,
//
//	{"last_updated": "...", "tables": {"<table id>": {"table_name": ..., "last_sync": ..., ...}}}
//
// with times in RFC 3339 UTC. The legacy flat form {"<table id>": {...}} (naive local times) is
// still read. A SyncState is not safe for concurrent use.
type SyncState struct {
	LastUpdated time.Time             `json:"last_updated"`
	Tables      map[string]TableState `json:"tables"`
}

// TableState is one table's entry.
type TableState struct {
	TableName      string    `json:"table_name"`
	LastSync       time.Time `json:"last_sync"`
	Strategy       string    `json:"strategy"`
	Rows           int64     `json:"rows"`
	Columns        int       `json:"columns"`
	FileSizeMB     float64   `json:"file_size_mb"`
	UncompressedMB float64   `json:"uncompressed_mb"`
	// Additions over the original.
	Bytes      int64  `json:"bytes,omitempty"`
	Partitions int    `json:"partitions,omitempty"`
	RunID      string `json:"run_id,omitempty"`
}

// NewTableState fills an entry from the table's Parquet statistics; sizes in MB are rounded to
// two decimals as before.
func NewTableState(name, strategy string, at time.Time, st TableStat) TableState {
	ts := TableState{
		TableName: name, LastSync: at.UTC(), Strategy: strategy,
		Rows: st.Rows, Columns: st.Columns, Bytes: st.Bytes,
		FileSizeMB:     mb(st.Bytes),
		UncompressedMB: mb(st.UncompressedBytes),
	}
	if st.Files > 1 {
		ts.Partitions = st.Files
	}
	return ts
}

func mb(b int64) float64 { return math.Round(float64(b)/(1<<20)*100) / 100 }

// LoadSyncState reads the state file. A missing file is an empty state; a file that cannot be
// parsed is an error (treating it as empty would silently trigger full reloads).
func LoadSyncState(path string) (*SyncState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &SyncState{Tables: map[string]TableState{}}, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := parseSyncState(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func parseSyncState(data []byte) (*SyncState, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("corrupt sync state: %w", err)
	}
	s := &SyncState{Tables: map[string]TableState{}}
	if _, wrapped := top["tables"]; wrapped {
		if raw, ok := top["last_updated"]; ok {
			if err := json.Unmarshal(raw, (*legacyTime)(&s.LastUpdated)); err != nil {
				return nil, fmt.Errorf("corrupt sync state: last_updated: %w", err)
			}
		}
		var tables map[string]json.RawMessage
		if err := json.Unmarshal(top["tables"], &tables); err != nil {
			return nil, fmt.Errorf("corrupt sync state: tables: %w", err)
		}
		top = tables
	}
	for id, raw := range top {
		var t legacyTableState
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("corrupt sync state: table %q: %w", id, err)
		}
		s.Tables[id] = t.state()
	}
	return s, nil
}

// legacyTableState reads an entry whose last_sync may be a naive local ISO timestamp.
type legacyTableState struct {
	TableState
	LastSync legacyTime `json:"last_sync"`
}

func (l legacyTableState) state() TableState {
	t := l.TableState
	t.LastSync = time.Time(l.LastSync)
	return t
}

// legacyTime parses RFC 3339, and the Python writer's naive local "2006-01-02T15:04:05.999999".
type legacyTime time.Time

func (l *legacyTime) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		*l = legacyTime(t.UTC())
		return nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			*l = legacyTime(t.UTC())
			return nil
		}
	}
	return fmt.Errorf("cannot parse time %q", s)
}

// Set records a table's entry.
func (s *SyncState) Set(tableID string, t TableState) {
	if s.Tables == nil {
		s.Tables = map[string]TableState{}
	}
	t.LastSync = t.LastSync.UTC()
	s.Tables[tableID] = t
}

// Save writes the state atomically in the wrapped form, stamping last_updated.
func (s *SyncState) Save(path string, now time.Time) error {
	s.LastUpdated = now.UTC()
	if s.Tables == nil {
		s.Tables = map[string]TableState{}
	}
	return WriteFileAtomic(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	})
}
