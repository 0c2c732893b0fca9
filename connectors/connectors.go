// Package connectors owns the registry of data-source connectors. Each connector lives in its own
// folder and registers itself in init, like a database/sql driver; cmd/analyst imports them by name.
package connectors

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// Connector extracts tables from one configured source.
type Connector interface {
	// Extract writes (or points at) the table's rows as CSV and describes them.
	Extract(ctx context.Context, req ExtractRequest) (*Extraction, error)
	// Check tests the connection and credentials (used by `analyst doctor` and the portal).
	Check(ctx context.Context) error
}

// ExtractRequest asks for one table, optionally limited to rows changed in a window.
type ExtractRequest struct {
	Table        config.Table
	ChangedSince time.Time // zero: no lower bound
	ChangedUntil time.Time // zero: no upper bound
	StagingDir   string    // the connector's temp files go here (same filesystem as the Parquet tree)
	Progress     func(bytes int64)
}

// Extraction is CSV data ready for conversion.
type Extraction struct {
	Files     []string        // read in order; together they are the table
	Format    store.CSVFormat // how the files are written
	Columns   []store.Column  // column names and source types, in file order; types may be empty (infer)
	Temporary bool            // the files belong to this run and are removed after conversion
}

// Settings is the connector's own block of instance.yaml (data_source.<name>).
type Settings interface {
	// Decode decodes the block strictly into v; errors name the file, line and key.
	Decode(v any) error
	// Dir is the instance folder, for relative paths.
	Dir() string
}

// Factory builds a connector from its settings.
type Factory func(s Settings) (Connector, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a connector available under name. It panics on a duplicate, like sql.Register.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[name]; dup {
		panic("connectors: Register called twice for " + name)
	}
	factories[name] = f
}

// Open builds the named connector.
func Open(name string, s Settings) (Connector, error) {
	mu.RLock()
	f, ok := factories[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown data source %q (known: %v)", name, Names())
	}
	return f(s)
}

// Names lists the registered connectors.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
