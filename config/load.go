// Package config owns the instance configuration: config/instance.yaml (with ${VAR} taken from the
// environment and .env), the table catalogue in docs/data_description.md and docs/datasets/*.md,
// and the layout of the instance folder. Load reads and checks all of it at once and reports every
// problem with its file, line and key.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrNoInstance means the instance folder has no config/instance.yaml (serve then runs the demo).
var ErrNoInstance = errors.New("no instance configuration")

// Paths is the layout of the instance folder. All paths are absolute.
type Paths struct {
	Home      string // the instance folder
	ConfigDir string // config/, or $CONFIG_DIR
	DocsDir   string // docs/
	DataDir   string // data/, or $DATA_DIR
	Parquet   string // data/parquet
	Metadata  string // data/metadata
	Staging   string // data/staging (same filesystem as Parquet, so renames are atomic)
	Raw       string // data/raw
	Store     string // data/analyst.db
}

// NewPaths lays out the instance folder home. CONFIG_DIR and DATA_DIR, when set through lookup,
// replace config/ and data/; relative values are relative to home.
func NewPaths(home string, lookup LookupFunc) (Paths, error) {
	abs, err := filepath.Abs(home)
	if err != nil {
		return Paths{}, fmt.Errorf("instance folder %q: %w", home, err)
	}
	dir := func(env, def string) string {
		v, ok := lookup(env)
		if !ok || strings.TrimSpace(v) == "" {
			return filepath.Join(abs, def)
		}
		if filepath.IsAbs(v) {
			return filepath.Clean(v)
		}
		return filepath.Join(abs, v)
	}
	p := Paths{Home: abs, ConfigDir: dir("CONFIG_DIR", "config"), DocsDir: filepath.Join(abs, "docs"), DataDir: dir("DATA_DIR", "data")}
	p.Parquet = filepath.Join(p.DataDir, "parquet")
	p.Metadata = filepath.Join(p.DataDir, "metadata")
	p.Staging = filepath.Join(p.DataDir, "staging")
	p.Raw = filepath.Join(p.DataDir, "raw")
	p.Store = filepath.Join(p.DataDir, "analyst.db")
	return p, nil
}

// rel shows path relative to the instance folder when it is inside it, for messages.
func (p Paths) rel(path string) string {
	if r, err := filepath.Rel(p.Home, path); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(r)
	}
	return path
}

// Options adjust Load for tests and embedding.
type Options struct {
	// LookupEnv reads the real environment; nil means os.LookupEnv. Values from .env fill in
	// only what it does not have.
	LookupEnv LookupFunc
	// Now is the clock for where_filters date placeholders; nil means time.Now.
	Now Clock
}

// Config is a loaded instance.
type Config struct {
	Instance  Instance
	Catalogue Catalogue
	Paths     Paths

	instanceFile string // as shown in messages
	env          LookupFunc
}

// Load reads the instance in folder home: .env, config/instance.yaml and the table catalogue.
// Without config/instance.yaml the error wraps ErrNoInstance. Otherwise every problem found is
// returned at once (errors.Join of *Error, sorted by file and line).
func Load(home string) (*Config, error) { return LoadWith(home, Options{}) }

// LoadWith is Load with options.
func LoadWith(home string, opt Options) (*Config, error) {
	base := opt.LookupEnv
	if base == nil {
		base = os.LookupEnv
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	// .env lives in the instance folder itself, so CONFIG_DIR and DATA_DIR may come from it.
	abs, err := filepath.Abs(home)
	if err != nil {
		return nil, fmt.Errorf("instance folder %q: %w", home, err)
	}
	dotenv, probs := readDotenv(filepath.Join(abs, ".env"), ".env")
	env := layered(base, dotenv)
	paths, err := NewPaths(abs, env)
	if err != nil {
		return nil, err
	}
	c := &Config{Paths: paths, env: env}

	path := filepath.Join(paths.ConfigDir, "instance.yaml")
	c.instanceFile = paths.rel(path)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoInstance, c.instanceFile)
	}
	if err != nil {
		return nil, err
	}
	root, perr := parseYAML(c.instanceFile, data, 0)
	if perr != nil {
		if strings.Contains(perr.Msg, "did not find expected ','") && strings.Contains(string(data), "${") {
			perr.Msg = strings.TrimSuffix(perr.Msg, parserHint) + ` (inside [ ] or { }, quote references: "${VAR}")`
		}
		return nil, append(probs, perr).err()
	}
	if root != nil {
		probs = append(probs, interpolate(c.instanceFile, root, "", env)...)
	}
	inst, iprobs := decodeInstance(c.instanceFile, root)
	c.Instance = inst
	probs = append(probs, iprobs...)

	cat, cprobs := loadCatalogue(c, now().UTC())
	c.Catalogue = cat
	probs = append(probs, cprobs...)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// LookupEnv reads a variable from the environment, falling back to the instance's .env.
func (c *Config) LookupEnv(key string) (string, bool) { return c.env(key) }

// Sources lists the connectors the instance configures: every data_source block plus
// data_source.type, sorted. Whoever opens them reports a name that is not a registered connector.
func (c *Config) Sources() []string {
	names := c.Instance.DataSource.Names()
	if t := c.Instance.DataSource.Type; t != "" && c.Instance.DataSource.blocks[t] == nil {
		names = append(names, t)
		sort.Strings(names)
	}
	return names
}

// IsPrivate reports whether only privileged users may see t: it says private: true, or its
// folder is listed in access.private_folders.
func (c *Config) IsPrivate(t Table) bool {
	if t.Private {
		return true
	}
	for _, f := range c.Instance.Access.PrivateFolders {
		if f == t.Folder {
			return true
		}
	}
	return false
}

// ConnectorSettings returns the data_source.<name> block for the connector of that name. It
// implements connectors.Settings (config cannot name that interface: connectors imports config).
// A connector without a block gets empty settings, i.e. its defaults.
func (c *Config) ConnectorSettings(name string) *SourceSettings {
	return &SourceSettings{name: name, file: c.instanceFile, node: c.Instance.DataSource.blocks[name], home: c.Paths.Home}
}

// SourceSettings is one connector's block of instance.yaml, already interpolated.
type SourceSettings struct {
	name, file string
	node       *yaml.Node
	home       string
}

// Decode decodes the block strictly into v: an unknown key or a value of the wrong type is an
// error naming the file, line and key (with a did-you-mean for unknown keys).
func (s *SourceSettings) Decode(v any) error {
	if s.node == nil {
		return nil
	}
	return decodeStrict(s.file, s.node, v, "data_source."+s.name).err()
}

// Dir is the instance folder, against which relative paths in the settings are resolved.
func (s *SourceSettings) Dir() string { return s.home }
