package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ai-data-analyst/analyst/schedule"
)

// Table returns the table with that name, or else with that source id.
func (c *Catalogue) Table(nameOrID string) (Table, bool) {
	for _, t := range c.Tables {
		if t.Name == nameOrID {
			return t, true
		}
	}
	for _, t := range c.Tables {
		if t.ID == nameOrID {
			return t, true
		}
	}
	return Table{}, false
}

// catalogueFiles returns the main catalogue file ($CONFIG_DIR/data_description.md when CONFIG_DIR
// is set and the file exists there, else docs/data_description.md) and docs/datasets/*.md sorted.
func catalogueFiles(c *Config) ([]string, error) {
	main := filepath.Join(c.Paths.DocsDir, "data_description.md")
	if v, _ := c.env("CONFIG_DIR"); strings.TrimSpace(v) != "" {
		alt := filepath.Join(c.Paths.ConfigDir, "data_description.md")
		if _, err := os.Stat(alt); err == nil {
			main = alt
		}
	}
	extra, err := filepath.Glob(filepath.Join(c.Paths.DocsDir, "datasets", "*.md"))
	if err != nil {
		return nil, err
	}
	sort.Strings(extra)
	return append([]string{main}, extra...), nil
}

// rawTable is a table as written, before defaults and checks.
type rawTable struct {
	ID                    string        `yaml:"id"`
	Name                  string        `yaml:"name"`
	Description           string        `yaml:"description"`
	PrimaryKey            keyList       `yaml:"primary_key"`
	SyncStrategy          string        `yaml:"sync_strategy"`
	IncrementalWindowDays int           `yaml:"incremental_window_days"`
	PartitionBy           string        `yaml:"partition_by"`
	PartitionGranularity  string        `yaml:"partition_granularity"`
	ForeignKeys           []ForeignKey  `yaml:"foreign_keys"`
	WhereFilters          []WhereFilter `yaml:"where_filters"`
	Folder                string        `yaml:"folder"`
	MaxHistoryDays        int           `yaml:"max_history_days"`
	Dataset               string        `yaml:"dataset"`
	InitialLoadChunkDays  int           `yaml:"initial_load_chunk_days"`
	Source                string        `yaml:"source"`
	Schedule              string        `yaml:"schedule"`
	Private               bool          `yaml:"private"`
	Columns               []Column      `yaml:"columns"`
	CSV                   *CSVTable     `yaml:"csv"`
}

// keyList is a primary key written as "a, b" or as a list [a, b].
type keyList []string

func (k *keyList) UnmarshalYAML(n *yaml.Node) error {
	var parts []string
	switch n.Kind {
	case yaml.ScalarNode:
		parts = strings.Split(n.Value, ",")
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a primary key column must be a name", c.Line)}}
			}
			parts = append(parts, c.Value)
		}
	default:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want \"col\", \"col_a, col_b\" or a list of columns", n.Line)}}
	}
	*k = nil
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			*k = append(*k, p)
		}
	}
	return nil
}

// tableDef is a decoded table with where it came from.
type tableDef struct {
	raw  rawTable
	node *yaml.Node
	file string // display path
}

var blockKeys = []string{"folder_mapping", "tables"}

// loadCatalogue reads, merges and checks the catalogue files.
func loadCatalogue(c *Config, now time.Time) (Catalogue, problems) {
	cat := Catalogue{FolderMapping: map[string]string{}}
	var probs problems
	files, err := catalogueFiles(c)
	if err != nil {
		probs.add(c.Paths.rel(c.Paths.DocsDir), 0, "", "%v", err)
		return cat, probs
	}
	var defs []tableDef
	for i, path := range files {
		file := c.Paths.rel(path)
		data, err := os.ReadFile(path)
		if err != nil {
			if i == 0 && errors.Is(err, fs.ErrNotExist) {
				probs.add(file, 0, "", "the table catalogue is missing (see docs/configuration.md)")
			} else {
				probs.add(file, 0, "", "%v", err)
			}
			continue
		}
		blocks, unclosed := yamlBlocks(string(data))
		if unclosed > 0 {
			probs.add(file, unclosed, "", "```yaml block is never closed")
		}
		for _, b := range blocks {
			root, perr := parseYAML(file, []byte(b.text), b.line)
			if perr != nil {
				probs = append(probs, perr)
				continue
			}
			if root == nil {
				continue
			}
			ds, bp := decodeBlock(file, root, cat.FolderMapping)
			defs = append(defs, ds...)
			probs = append(probs, bp...)
		}
	}

	byName := map[string]*tableDef{}
	for i := range defs {
		d := &defs[i]
		t, tp := c.resolveTable(d, cat.FolderMapping, now)
		probs = append(probs, tp...)
		if t.Name != "" {
			if first, dup := byName[t.Name]; dup {
				probs = append(probs, &Error{File: d.file, Line: d.node.Line, Table: t.Name, Key: "name",
					Msg: fmt.Sprintf("duplicate table name (also defined at %s:%d)", first.file, first.node.Line)})
				continue
			}
			byName[t.Name] = d
		}
		cat.Tables = append(cat.Tables, t)
	}
	return cat, probs
}

// decodeBlock reads one ```yaml block: its folder_mapping is merged into mapping (a later key
// wins) and its tables are returned undecorated.
func decodeBlock(file string, root *yaml.Node, mapping map[string]string) ([]tableDef, problems) {
	var probs problems
	if root.Kind != yaml.MappingNode {
		probs.add(file, root.Line, "", "a ```yaml block of the catalogue must be a mapping with tables: and folder_mapping:")
		return nil, probs
	}
	var defs []tableDef
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "folder_mapping":
			m := map[string]string{}
			if p := decodeStrict(file, v, &m, "folder_mapping"); len(p) > 0 {
				probs = append(probs, p...)
				continue
			}
			for bucket, folder := range m {
				mapping[bucket] = folder
			}
		case "tables":
			if v.Kind != yaml.SequenceNode {
				if v.Tag != "!!null" {
					probs.add(file, v.Line, "tables", "must be a list of tables")
				}
				continue
			}
			for _, tn := range v.Content {
				if tn.Kind == yaml.AliasNode {
					tn = tn.Alias
				}
				if tn.Kind != yaml.MappingNode {
					probs.add(file, tn.Line, "tables", "each table must be a mapping (id:, name:, ...)")
					continue
				}
				d := tableDef{node: tn, file: file}
				tp := decodeStrict(file, tn, &d.raw, "")
				label := tableLabel(tn)
				for _, e := range tp {
					e.Table = label
				}
				probs = append(probs, tp...)
				defs = append(defs, d)
			}
		default:
			probs.add(file, k.Line, k.Value, "%s", unknownKey(k.Value, blockKeys))
		}
	}
	return defs, probs
}

// tableLabel names a table in messages before it is decoded: its name, else its id.
func tableLabel(n *yaml.Node) string {
	for _, key := range []string{"name", "id"} {
		if v := find(n, key); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
			return v.Value
		}
	}
	return ""
}

var (
	strategies    = []string{FullRefresh, Incremental, Partitioned}
	granularities = []string{Month, Day, Year}
	operators     = []string{"eq", "ne", "gt", "ge", "lt", "le"}
	placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]*)\s*\}\}`)
	// placeholderDays are the where_filters date placeholders: days before today.
	placeholderDays = map[string]int{
		"today": 0, "last_week": 7, "last_month": 30, "last_2_months": 60, "last_3_months": 90,
		"last_6_months": 180, "last_year": 365, "last_2_years": 730,
	}
)

// resolveTable applies defaults, resolves folder, source and privacy, and checks one table.
func (c *Config) resolveTable(d *tableDef, mapping map[string]string, now time.Time) (Table, problems) {
	r, n := d.raw, d.node
	t := Table{
		ID: strings.TrimSpace(r.ID), Name: strings.TrimSpace(r.Name), Description: r.Description,
		PrimaryKey: r.PrimaryKey, SyncStrategy: r.SyncStrategy, IncrementalWindowDays: r.IncrementalWindowDays,
		PartitionBy: r.PartitionBy, PartitionGranularity: r.PartitionGranularity, ForeignKeys: r.ForeignKeys,
		WhereFilters: r.WhereFilters, Folder: strings.TrimSpace(r.Folder), MaxHistoryDays: r.MaxHistoryDays,
		Dataset: r.Dataset, InitialLoadChunkDays: r.InitialLoadChunkDays, Source: strings.TrimSpace(r.Source),
		Schedule: strings.TrimSpace(r.Schedule), Private: r.Private, Columns: r.Columns, CSV: r.CSV,
		File: d.file, Line: n.Line,
	}
	var probs problems
	label := t.Name
	if label == "" {
		label = t.ID
	}
	bad := func(key string, format string, args ...any) {
		line := findLine(n, splitPath(key)...)
		probs = append(probs, &Error{File: d.file, Line: line, Table: label, Key: key, Msg: fmt.Sprintf(format, args...)})
	}

	for _, req := range []struct {
		key   string
		empty bool
	}{{"id", t.ID == ""}, {"name", t.Name == ""}, {"primary_key", len(t.PrimaryKey) == 0}, {"sync_strategy", t.SyncStrategy == ""}} {
		if req.empty {
			bad(req.key, "required")
		}
	}
	if t.Name != "" && !safeSegment(t.Name) {
		bad("name", "%q cannot be a file name (no /, \\, leading dot or control characters)", t.Name)
	}

	switch t.SyncStrategy {
	case "", FullRefresh, Incremental:
	case Partitioned:
		if t.PartitionBy == "" {
			bad("sync_strategy", "partitioned needs partition_by (the date or timestamp column that picks the partition)")
		}
	default:
		bad("sync_strategy", "%s", notOneOf(t.SyncStrategy, strategies))
	}
	if t.PartitionGranularity != "" && !contains(granularities, t.PartitionGranularity) {
		bad("partition_granularity", "%s", notOneOf(t.PartitionGranularity, granularities))
	}
	if t.IsPartitioned() && t.PartitionGranularity == "" {
		t.PartitionGranularity = Month
	}
	for _, days := range []struct {
		key string
		v   int
	}{{"incremental_window_days", t.IncrementalWindowDays}, {"max_history_days", t.MaxHistoryDays}, {"initial_load_chunk_days", t.InitialLoadChunkDays}} {
		if days.v < 0 {
			bad(days.key, "must not be negative")
		}
	}
	if t.SyncStrategy == Incremental && t.IncrementalWindowDays == 0 {
		t.IncrementalWindowDays = 7
	}
	if t.InitialLoadChunkDays == 0 {
		t.InitialLoadChunkDays = 30
	}

	for i := range t.WhereFilters {
		f := &t.WhereFilters[i]
		key := fmt.Sprintf("where_filters[%d]", i)
		if f.Column == "" {
			bad(key+".column", "required")
		}
		if f.Operator == "" {
			f.Operator = "eq"
		} else if !contains(operators, f.Operator) {
			bad(key+".operator", "%s", notOneOf(f.Operator, operators))
		}
		if len(f.Values) == 0 {
			bad(key+".values", "at least one value is required")
		}
		for j, v := range f.Values {
			vkey := fmt.Sprintf("%s.values[%d]", key, j)
			f.Values[j] = placeholderRE.ReplaceAllStringFunc(v, func(m string) string {
				name := placeholderRE.FindStringSubmatch(m)[1]
				days, ok := placeholderDays[name]
				if !ok {
					bad(vkey, "unknown placeholder %s", describePlaceholder(name))
					return m
				}
				return now.AddDate(0, 0, -days).Format(time.DateOnly)
			})
		}
	}
	for i, fk := range t.ForeignKeys {
		if fk.Column == "" || !strings.Contains(fk.References, ".") {
			bad(fmt.Sprintf("foreign_keys[%d]", i), "want {column: col, references: table.column}")
		}
	}

	if t.Schedule != "" {
		if _, err := schedule.Parse(t.Schedule); err != nil {
			bad("schedule", "%v", err)
		}
	}

	seen := map[string]bool{}
	for i := range t.Columns {
		col := &t.Columns[i]
		key := fmt.Sprintf("columns[%d]", i)
		switch {
		case col.Name == "":
			bad(key+".name", "required")
		case seen[col.Name]:
			bad(key+".name", "column %q is declared twice", col.Name)
		}
		seen[col.Name] = true
		if typ, err := normalizeType(col.Type); err != nil {
			bad(key+".type", "%v", err)
		} else {
			col.Type = typ
		}
	}
	if t.CSV != nil {
		for _, msg := range csvDefaults(t.CSV) {
			bad("csv", "%s", msg)
		}
	}

	if t.Source == "" {
		t.Source = c.Instance.DataSource.Type
	} else if sources := c.Sources(); t.Source != SourceJira && len(c.Instance.DataSource.blocks) > 0 && !contains(sources, t.Source) {
		bad("source", "%s (configure it under data_source in %s)", notOneOf(t.Source, sources), c.instanceFile)
	}
	if t.Schedule == "" {
		t.Schedule = c.Instance.DataSource.Schedules[t.Source] // the source's schedule, if any
	}

	if t.Dataset != "" && len(c.Instance.Datasets) > 0 {
		if _, ok := c.Instance.Datasets[t.Dataset]; !ok {
			bad("dataset", "%s (datasets are listed in %s)", notOneOf(t.Dataset, sortedKeys(c.Instance.Datasets)), c.instanceFile)
		}
	}

	if t.Folder == "" {
		t.Folder = mapping[t.Bucket()]
	}
	if t.Folder == "" {
		t.Folder = t.Bucket()
	}
	if t.Folder != "" && !safeSegment(t.Folder) {
		bad("folder", "%q cannot be a folder name (no /, \\, leading dot or control characters)", t.Folder)
	}
	t.Private = c.IsPrivate(t)
	return t, probs
}

// splitPath turns "where_filters[0].values" into the node path where_filters, 0, values.
func splitPath(key string) []string {
	return strings.Split(strings.NewReplacer("[", ".", "]", "").Replace(key), ".")
}

func describePlaceholder(name string) string {
	known := sortedKeys(placeholderDays)
	msg := fmt.Sprintf("{{%s}} (known: %s)", name, strings.Join(known, ", "))
	if s := suggest(name, known); s != "" {
		msg = fmt.Sprintf("{{%s}} (did you mean {{%s}}?)", name, s)
	}
	return msg
}

// safeSegment reports whether s can be used as one path element under data/parquet.
func safeSegment(s string) bool {
	if s == "" || s[0] == '.' || strings.ContainsAny(s, `/\:`) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// typeAliases map accepted spellings to the store's column types.
var typeAliases = map[string]string{
	"STRING": "STRING", "VARCHAR": "STRING", "TEXT": "STRING",
	"INTEGER": "INTEGER", "BIGINT": "INTEGER",
	"NUMERIC": "NUMERIC", "FLOAT": "NUMERIC", "DOUBLE": "NUMERIC",
	"BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP",
	"TIMESTAMP_NTZ": "TIMESTAMP_NTZ", "TIMESTAMP_TZ": "TIMESTAMP_TZ",
}

var decimalRE = regexp.MustCompile(`^(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$`)

// normalizeType maps a declared column type to its canonical name: upper case, aliases replaced
// (VARCHAR -> STRING, BIGINT -> INTEGER, DOUBLE -> NUMERIC), DECIMAL(p,s) (or NUMERIC(p,s))
// written DECIMAL(p,s) without spaces.
func normalizeType(typ string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(typ))
	if c, ok := typeAliases[u]; ok {
		return c, nil
	}
	if m := decimalRE.FindStringSubmatch(u); m != nil {
		p, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		if p < 1 || p > 38 || s > p {
			return "", fmt.Errorf("%s: precision must be 1 to 38 and scale at most the precision", typ)
		}
		return fmt.Sprintf("DECIMAL(%d,%d)", p, s), nil
	}
	if u == "DECIMAL" {
		return "", fmt.Errorf("DECIMAL needs a precision and a scale, e.g. DECIMAL(12,2)")
	}
	names := []string{"STRING", "INTEGER", "NUMERIC", "DECIMAL(p,s)", "BOOLEAN", "DATE", "TIMESTAMP", "TIMESTAMP_NTZ", "TIMESTAMP_TZ"}
	if typ == "" {
		return "", fmt.Errorf("type required (one of %s)", strings.Join(names, ", "))
	}
	if s := suggest(u, sortedKeys(typeAliases)); s != "" {
		return "", fmt.Errorf("%q is not a column type (did you mean %s?)", typ, s)
	}
	return "", fmt.Errorf("%q is not a column type (one of %s)", typ, strings.Join(names, ", "))
}

// csvDefaults fills in a table's CSV options and returns what is wrong with them.
func csvDefaults(c *CSVTable) []string {
	var msgs []string
	if c.Delimiter == "" {
		c.Delimiter = ","
	}
	if c.Quote == "" {
		c.Quote = `"`
	}
	if c.Header == nil {
		yes := true
		c.Header = &yes
	}
	if len([]rune(c.Delimiter)) != 1 {
		msgs = append(msgs, fmt.Sprintf("delimiter %q must be one character (write a tab as \"\\t\")", c.Delimiter))
	}
	if len([]rune(c.Quote)) != 1 {
		msgs = append(msgs, fmt.Sprintf("quote %q must be one character", c.Quote))
	}
	switch strings.ToLower(strings.ReplaceAll(c.Encoding, "_", "-")) {
	case "", "utf-8", "utf8":
		c.Encoding = "utf-8"
	case "latin-1", "latin1", "iso-8859-1":
		c.Encoding = "latin-1"
	case "windows-1252", "cp1252":
		c.Encoding = "windows-1252"
	default:
		msgs = append(msgs, fmt.Sprintf("encoding %q is not one of utf-8, latin-1, windows-1252", c.Encoding))
	}
	return msgs
}

// block is a fenced ```yaml block of a markdown file.
type block struct {
	line int // the line of the opening fence; the block's first line is line+1
	text string
}

// yamlBlocks returns the fenced code blocks whose info string starts with yaml or yml, following
// CommonMark fences: ``` or ~~~ (3 or more), closed by the same character at least as long. A
// yaml example inside a longer fence (````) is therefore not parsed. unclosed is the line of a
// yaml fence that never closes (0 if none).
func yamlBlocks(md string) (blocks []block, unclosed int) {
	var (
		inFence  bool
		isYAML   bool
		fenceCh  byte
		fenceLen int
		start    int
		body     []string
	)
	for i, l := range strings.Split(md, "\n") {
		l = strings.TrimRight(l, "\r")
		if !inFence {
			ch, n, info, ok := fenceOpen(l)
			if !ok {
				continue
			}
			inFence, fenceCh, fenceLen, start, body = true, ch, n, i+1, nil
			lang, _, _ := strings.Cut(info, " ")
			isYAML = strings.EqualFold(lang, "yaml") || strings.EqualFold(lang, "yml")
			continue
		}
		if fenceClose(l, fenceCh, fenceLen) {
			if isYAML {
				blocks = append(blocks, block{line: start, text: strings.Join(body, "\n")})
			}
			inFence = false
			continue
		}
		if isYAML {
			body = append(body, l)
		}
	}
	if inFence && isYAML {
		unclosed = start
	}
	return blocks, unclosed
}

func fenceIndent(l string) (string, bool) {
	t := strings.TrimLeft(l, " ")
	return t, len(l)-len(t) <= 3
}

func fenceOpen(l string) (ch byte, n int, info string, ok bool) {
	t, ok := fenceIndent(l)
	if !ok || len(t) < 3 || (t[0] != '`' && t[0] != '~') {
		return 0, 0, "", false
	}
	ch = t[0]
	for n < len(t) && t[n] == ch {
		n++
	}
	info = strings.TrimSpace(t[n:])
	if n < 3 || (ch == '`' && strings.Contains(info, "`")) {
		return 0, 0, "", false
	}
	return ch, n, info, true
}

func fenceClose(l string, ch byte, min int) bool {
	t, ok := fenceIndent(l)
	if !ok {
		return false
	}
	n := 0
	for n < len(t) && t[n] == ch {
		n++
	}
	return n >= min && strings.TrimSpace(t[n:]) == ""
}
