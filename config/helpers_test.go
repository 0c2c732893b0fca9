package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixedNow is the clock of every test: where_filters placeholders resolve against it.
var fixedNow = time.Date(2025, 3, 10, 23, 30, 0, 0, time.UTC)

// writeHome creates an instance folder holding files (path -> content).
func writeHome(t *testing.T, files map[string]string) string {
	t.Helper()
	home := t.TempDir()
	for name, content := range files {
		p := filepath.Join(home, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

func envOf(vars map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func load(home string, env map[string]string) (*Config, error) {
	return LoadWith(home, Options{LookupEnv: envOf(env), Now: func() time.Time { return fixedNow }})
}

func mustLoad(t *testing.T, home string, env map[string]string) *Config {
	t.Helper()
	c, err := load(home, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// lineOf returns the 1-based line of the first line of content containing marker.
func lineOf(t *testing.T, content, marker string) int {
	t.Helper()
	for i, l := range strings.Split(content, "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	t.Fatalf("marker %q not found", marker)
	return 0
}

// errorLines splits a joined load error into its messages.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// assertErrors checks that err consists of exactly want, in order.
func assertErrors(t *testing.T, err error, want ...string) {
	t.Helper()
	got := errorLines(err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n  got:\n    %s\n  want:\n    %s", strings.Join(got, "\n    "), strings.Join(want, "\n    "))
	}
}

const minimalInstance = "instance:\n  name: Test\n"

const minimalCatalogue = "# Tables\n\n```yaml\ntables:\n  - {id: in.c-a.t, name: t, primary_key: id, sync_strategy: full_refresh}\n```\n"
