package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"go.yaml.in/yaml/v3"

	"github.com/ai-data-analyst/analyst/config"
)

// SchemaFiles says where the generated schema.yml files go. The schema of each table comes
// from its Parquet footers (for a partitioned table, the union over all partitions).
type SchemaFiles struct {
	ParquetRoot string // data/parquet: tables are <folder>/<name>.parquet or <folder>/<name>/*.parquet
	Public      string // schema of the tables every analyst may see
	Private     string // schema of the private tables; "" leaves them out entirely
	DatasetDir  string // a table with a dataset goes to DatasetDir/<dataset>/schema.yml
	IsPrivate   func(config.Table) bool
	Source      string    // _metadata.source, e.g. "Keboola Storage API"
	Now         time.Time // generated_at
}

// schemaVersion is the version analysts' tools check in _metadata._schema_version.
const schemaVersion = 2

// WriteSchemaFiles writes the schema files for the tables whose Parquet exists and returns the
// paths written. A private table is written only to the private file, never to a shared one.
func WriteSchemaFiles(tables []config.Table, o SchemaFiles) ([]string, error) {
	groups := map[string][]*yaml.Node{} // output path -> key/value nodes of its tables
	order := []string{o.Public}
	groups[o.Public] = nil
	for _, t := range tables {
		out := o.Public
		switch {
		case o.IsPrivate != nil && o.IsPrivate(t):
			if o.Private == "" {
				continue
			}
			out = o.Private
		case t.Dataset != "":
			out = filepath.Join(o.DatasetDir, t.Dataset, "schema.yml")
		}
		cols, err := tableSchema(o.ParquetRoot, t)
		if errors.Is(err, os.ErrNotExist) {
			continue // not synced yet
		}
		if err != nil {
			return nil, err
		}
		if _, ok := groups[out]; !ok {
			order = append(order, out)
		}
		groups[out] = append(groups[out], str(t.Name), tableNode(t, cols))
	}
	if o.Private != "" && groups[o.Private] == nil {
		order = append(order, o.Private) // written even when empty, so a stale one is replaced
	}
	var written []string
	for _, out := range order {
		data, err := schemaDocument(groups[out], o)
		if err != nil {
			return written, err
		}
		if old, err := os.ReadFile(out); err == nil && sameSchema(old, data) {
			continue // unchanged but for the time: keep the file, so pulls do not fetch it again
		}
		if err := WriteFileAtomic(out, 0o644, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return written, err
		}
		written = append(written, out)
	}
	return written, nil
}

// tableSchema reads a table's columns from its Parquet footers.
func tableSchema(root string, t config.Table) ([]arrow.Field, error) {
	base := filepath.Join(root, t.Folder, t.Name)
	files := []string{base + ".parquet"}
	if t.IsPartitioned() {
		parts, err := partitionFiles(base)
		if err != nil {
			return nil, err
		}
		if len(parts) == 0 {
			return nil, os.ErrNotExist
		}
		files = files[:0]
		for _, f := range parts {
			files = append(files, f)
		}
		sort.Strings(files) // later periods last: their type of a column wins
	}
	var fields []arrow.Field
	index := map[string]int{}
	for _, f := range files {
		sc, err := parquetSchema(f)
		if err != nil {
			return nil, err
		}
		for _, fd := range sc.Fields() {
			if i, ok := index[fd.Name]; ok {
				fields[i] = fd
				continue
			}
			index[fd.Name] = len(fields)
			fields = append(fields, fd)
		}
	}
	return fields, nil
}

func parquetSchema(path string) (*arrow.Schema, error) {
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer r.Close()
	md := r.MetaData()
	sc, err := pqarrow.FromParquet(md.Schema, &pqarrow.ArrowReadProperties{}, md.KeyValueMetadata())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sc, nil
}

// arrowTypeName names a type as pyarrow prints it, the names the original schema.yml used.
func arrowTypeName(t arrow.DataType) string {
	switch t := t.(type) {
	case *arrow.StringType:
		return "string"
	case *arrow.LargeStringType:
		return "large_string"
	case *arrow.Float64Type:
		return "double"
	case *arrow.Float32Type:
		return "float"
	case *arrow.Date32Type:
		return "date32[day]"
	case *arrow.Decimal128Type:
		return fmt.Sprintf("decimal128(%d, %d)", t.Precision, t.Scale)
	}
	return t.String()
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func mapping(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }

func value(v any) *yaml.Node {
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return str(fmt.Sprint(v))
	}
	return n
}

func tableNode(t config.Table, cols []arrow.Field) *yaml.Node {
	declared := map[string]config.Column{}
	for _, c := range t.Columns {
		declared[c.Name] = c
	}
	colNodes := &yaml.Node{Kind: yaml.SequenceNode}
	for _, f := range cols {
		c := mapping(str("name"), str(f.Name), str("type"), str(arrowTypeName(f.Type)))
		if d, ok := declared[f.Name]; ok {
			if d.Type != "" {
				c.Content = append(c.Content, str("source_type"), str(d.Type))
			}
			if d.Description != "" {
				c.Content = append(c.Content, str("description"), str(d.Description))
			}
		}
		colNodes.Content = append(colNodes.Content, c)
	}
	pk := t.PrimaryKey
	if pk == nil {
		pk = []string{}
	}
	n := mapping(
		str("table_id"), str(t.ID),
		str("description"), str(t.Description),
		str("primary_key"), value(pk),
		str("sync_strategy"), str(t.SyncStrategy),
		str("columns"), colNodes,
	)
	if t.IsPartitioned() {
		n.Content = append(n.Content, str("partitioned_by"), str(t.PartitionBy))
	}
	return n
}

// sameSchema compares two schema files, ignoring the lines that carry the generation time.
func sameSchema(a, b []byte) bool {
	strip := func(doc []byte) string {
		var keep []string
		for _, line := range strings.Split(string(doc), "\n") {
			if !strings.Contains(line, "generated_at") && !strings.HasPrefix(line, "# Generated") {
				keep = append(keep, line)
			}
		}
		return strings.Join(keep, "\n")
	}
	return strip(a) == strip(b)
}

func schemaDocument(tables []*yaml.Node, o SchemaFiles) ([]byte, error) {
	now := o.Now.UTC().Format(time.RFC3339)
	source := o.Source
	if source == "" {
		source = "analyst sync"
	}
	doc := mapping(
		str("_metadata"), mapping(
			str("_schema_version"), value(schemaVersion),
			str("generated_at"), str(now),
			str("note"), str("Column types are read from the Parquet files; descriptions come from data_description.md."),
			str("source"), str(source),
			str("generator"), str("analyst"),
		),
		str("tables"), mapping(tables...),
	)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# AUTO-GENERATED by analyst: do not edit, changes are overwritten on the next sync.\n")
	fmt.Fprintf(&buf, "# Generated: %s\n", now)
	fmt.Fprintf(&buf, "# Contains: %d tables with their columns and Arrow types.\n", len(tables)/2)
	fmt.Fprintf(&buf, "# Table descriptions, keys and sync settings are defined in docs/data_description.md.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(strings.TrimRight(buf.String(), "\n") + "\n"), nil
}
