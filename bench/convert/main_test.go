package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ai-data-analyst/analyst/store"
)

// The generator is deterministic, and our converter and DuckDB agree on its output (the check
// the benchmark relies on), in process and on a small size.
func TestGenerateConvertVerify(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")
	for _, p := range []string{a, b} {
		if err := generate(p, 2<<20); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) || len(da) < 2<<20 {
		t.Fatalf("generator output differs or is short (%d bytes)", len(da))
	}
	duck, ours := filepath.Join(dir, "duck.parquet"), filepath.Join(dir, "ours.parquet")
	if err := duckCopy(a, duck); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ConvertCSV(context.Background(), []string{a}, store.ConvertOptions{Format: store.CSVFormat{Header: true}}, ours); err != nil {
		t.Fatal(err)
	}
	if err := verify(duck, ours); err != nil {
		t.Fatal(err)
	}
	// verify must notice a difference.
	other := filepath.Join(dir, "other.csv")
	if err := generate(other, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ConvertCSV(context.Background(), []string{other}, store.ConvertOptions{Format: store.CSVFormat{Header: true}}, ours); err != nil {
		t.Fatal(err)
	}
	if err := verify(duck, ours); err == nil {
		t.Error("verify accepted files with different rows")
	}
}
