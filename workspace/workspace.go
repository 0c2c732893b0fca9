// Package workspace owns what an analyst's workspace is made of: the view of the server a pull
// mirrors (the JSON of GET /api/manifest, shared by the portal and the pull client) and the
// templates of the workspace's own files (CLAUDE.md, .claude/settings.json), embedded here and
// overridable per instance in config/workspace/.
package workspace

import (
	"bytes"
	"embed"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"text/template"
)

// View is GET /api/manifest: everything one analyst's workspace mirrors.
type View struct {
	Version  uint64  `json:"version"` // the server's manifest version when the view was made
	Instance string  `json:"instance"`
	User     string  `json:"user"`
	Tables   []Table `json:"tables"`
	Files    []File  `json:"files"`
}

// Table is a table of the view; its files are the Files with the same Table.
type Table struct {
	Name        string `json:"name"`
	Folder      string `json:"folder"`
	Description string `json:"description,omitempty"`
	Partitioned bool   `json:"partitioned"`
	Dataset     string `json:"dataset,omitempty"`
	Rows        int64  `json:"rows"`
}

// File is a file to mirror under the workspace's server/ folder.
type File struct {
	Path      string `json:"path"` // slash-separated, relative to server/
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Table     string `json:"table,omitempty"`
	Partition string `json:"partition,omitempty"`
	Rows      int64  `json:"rows,omitempty"`
	Schema    string `json:"schema,omitempty"`
}

// Template files, mirrored as server/workspace/<name>.
const (
	ClaudeTemplate = "CLAUDE.md.tmpl" // rendered into <workspace>/CLAUDE.md
	ClaudeSettings = "settings.json"  // copied to <workspace>/.claude/settings.json
)

//go:embed templates
var templates embed.FS

// ExamplesDir holds the example notification scripts (data freshness, revenue drop on the demo's
// orders, a daily chart), mirrored to server/workspace/examples/notifications/ for analysts to
// copy into user/notifications/.
const ExamplesDir = "examples/notifications"

// Examples are the example notification scripts, under ExamplesDir.
var Examples, _ = fs.Sub(templates, "templates")

// Templates returns the workspace templates by name: the instance's own from
// configDir/workspace/ where present, else the embedded defaults; and the example scripts.
func Templates(configDir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, name := range []string{ClaudeTemplate, ClaudeSettings} {
		b, err := os.ReadFile(filepath.Join(configDir, "workspace", name))
		if errors.Is(err, fs.ErrNotExist) {
			b, err = templates.ReadFile("templates/" + name)
		}
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	examples, err := fs.ReadDir(Examples, ExamplesDir)
	if err != nil {
		return nil, err
	}
	for _, e := range examples {
		name := ExamplesDir + "/" + e.Name()
		if out[name], err = fs.ReadFile(Examples, name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Data is what the CLAUDE.md template is rendered with.
type Data struct {
	Instance string
	User     string
	Dir      string // the workspace, absolute
	DuckDB   string // the analytics database, absolute
	Tables   []Table
}

// Render renders the CLAUDE.md template, tables sorted by name.
func Render(tmpl []byte, d Data) ([]byte, error) {
	t, err := template.New(ClaudeTemplate).Option("missingkey=error").Parse(string(tmpl))
	if err != nil {
		return nil, err
	}
	d.Tables = append([]Table(nil), d.Tables...)
	sort.Slice(d.Tables, func(i, j int) bool { return d.Tables[i].Name < d.Tables[j].Name })
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
