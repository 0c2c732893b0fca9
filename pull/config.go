package pull

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ai-data-analyst/analyst/store"
)

// Config is what a workspace remembers of its server, in D/.analyst/config (mode 0600: it
// holds the token).
type Config struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

func configPath(dir string) string { return filepath.Join(dir, ".analyst", "config") }

// LoadConfig reads a workspace's remembered server and token; none is an empty Config.
func LoadConfig(dir string) (Config, error) {
	var c Config
	b, err := os.ReadFile(configPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w (delete it and pass --server and --token again)", configPath(dir), err)
	}
	return c, nil
}

// SaveConfig remembers server and token for the workspace, readable by its owner only.
func SaveConfig(dir string, c Config) error {
	if old, err := LoadConfig(dir); err == nil && old == c {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(configPath(dir)), 0o700); err != nil {
		return err
	}
	return store.WriteFileAtomic(configPath(dir), 0o600, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	})
}
