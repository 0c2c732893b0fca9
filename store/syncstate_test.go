package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSyncStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata", "sync_state.json")
	s, err := LoadSyncState(path)
	if err != nil || len(s.Tables) != 0 {
		t.Fatalf("missing file: %v %v", s, err)
	}
	at := time.Date(2024, 5, 6, 9, 10, 11, 0, time.FixedZone("CEST", 2*3600))
	s.Set("in.c-shop.orders", NewTableState("orders", "incremental", at, TableStat{Rows: 10, Columns: 3, Bytes: 3 << 20, UncompressedBytes: 7 << 20, Files: 4}))
	if err := s.Save(path, at); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var doc struct {
		LastUpdated string                    `json:"last_updated"`
		Tables      map[string]map[string]any `json:"tables"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	e := doc.Tables["in.c-shop.orders"]
	if doc.LastUpdated != "2024-05-06T07:10:11Z" || e["last_sync"] != "2024-05-06T07:10:11Z" || e["table_name"] != "orders" ||
		e["rows"] != 10.0 || e["columns"] != 3.0 || e["file_size_mb"] != 3.0 || e["uncompressed_mb"] != 7.0 || e["strategy"] != "incremental" || e["partitions"] != 4.0 {
		t.Errorf("written %s", raw)
	}
	back, err := LoadSyncState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Tables["in.c-shop.orders"]; !got.LastSync.Equal(at) || got.Rows != 10 || !back.LastUpdated.Equal(at) {
		t.Errorf("read back %+v", back)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Errorf("temp files left %v", left)
	}
}

func TestSyncStateReadsLegacyFlatForm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync_state.json")
	legacy := `{"in.c-crm.company": {"table_name": "company", "last_sync": "2024-03-01T08:30:00.123456",
		"strategy": "full_refresh", "rows": 42, "columns": 5, "file_size_mb": 1.25, "uncompressed_mb": 3.5}}`
	os.WriteFile(path, []byte(legacy), 0o644)
	s, err := LoadSyncState(path)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Tables["in.c-crm.company"]
	want := time.Date(2024, 3, 1, 8, 30, 0, 123456000, time.Local)
	if !got.LastSync.Equal(want) || got.Rows != 42 || got.FileSizeMB != 1.25 || got.TableName != "company" {
		t.Errorf("legacy entry %+v", got)
	}
}

func TestSyncStateCorruptFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"truncated.json": `{"last_updated": "2024-01-01T00:00:00Z", "tables": {"a": {"rows": 1`,
		"badtime.json":   `{"tables": {"a": {"last_sync": "yesterday"}}}`,
		"badtype.json":   `{"tables": {"a": {"rows": "many"}}}`,
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o644)
		if _, err := LoadSyncState(path); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}
