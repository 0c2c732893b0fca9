package keboola

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ai-data-analyst/analyst/store"
)

// Bucket is one Storage bucket.
type Bucket struct {
	ID            string
	Name          string
	Stage         string
	Description   string
	RowsCount     int64
	DataSizeBytes int64
}

// TableInfo is a table's detail with its columns typed by the metadata cascade.
type TableInfo struct {
	ID             string
	Name           string
	BucketID       string
	Description    string
	PrimaryKey     []string
	Columns        []store.Column
	RowsCount      int64
	DataSizeBytes  int64
	LastImportDate string
	LastChangeDate string
	IsAlias        bool
}

// ListBuckets lists the project's buckets.
func (c *Client) ListBuckets(ctx context.Context) ([]Bucket, error) {
	var raw []struct {
		ID            string  `json:"id"`
		Name          string  `json:"name"`
		Stage         string  `json:"stage"`
		Description   string  `json:"description"`
		RowsCount     flexInt `json:"rowsCount"`
		DataSizeBytes flexInt `json:"dataSizeBytes"`
	}
	if err := c.getJSON(ctx, "/v2/storage/buckets", nil, &raw); err != nil {
		return nil, c.redact(fmt.Errorf("keboola: list buckets: %w", err))
	}
	out := make([]Bucket, len(raw))
	for i, b := range raw {
		out[i] = Bucket{ID: b.ID, Name: b.Name, Stage: b.Stage, Description: b.Description,
			RowsCount: int64(b.RowsCount), DataSizeBytes: int64(b.DataSizeBytes)}
	}
	return out, nil
}

// ListTables lists the tables of one bucket with their typed columns.
func (c *Client) ListTables(ctx context.Context, bucket string) ([]TableInfo, error) {
	var raw []tableJSON
	q := url.Values{"include": {"columns,columnMetadata,metadata"}}
	if err := c.getJSON(ctx, "/v2/storage/buckets/"+url.PathEscape(bucket)+"/tables", q, &raw); err != nil {
		return nil, c.redact(fmt.Errorf("keboola: list tables of bucket %s: %w", bucket, err))
	}
	out := make([]TableInfo, len(raw))
	for i := range raw {
		out[i] = raw[i].info()
	}
	return out, nil
}

// Table reads one table's detail.
func (c *Client) Table(ctx context.Context, id string) (*TableInfo, error) {
	t, err := c.table(ctx, id)
	if err != nil {
		return nil, c.redact(fmt.Errorf("keboola: table %s: %w", id, err))
	}
	return t, nil
}

func (c *Client) table(ctx context.Context, id string) (*TableInfo, error) {
	var raw tableJSON
	if err := c.getJSON(ctx, "/v2/storage/tables/"+url.PathEscape(id), nil, &raw); err != nil {
		return nil, err
	}
	if len(raw.Columns) == 0 {
		return nil, errors.New("the table has no columns")
	}
	info := raw.info()
	return &info, nil
}

// getJSON GETs an API path and decodes the JSON reply into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	u := c.apiURL(path, q)
	return c.do(ctx, call{method: http.MethodGet, url: u, header: c.authHeader(), read: decodeJSON(u, v)})
}

// apiURL joins the stack URL and an already escaped API path.
func (c *Client) apiURL(path string, q url.Values) string {
	u := strings.TrimRight(c.base.String(), "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func (c *Client) authHeader() http.Header {
	return http.Header{"X-Storageapi-Token": {c.token}, "Accept": {"application/json"}}
}

func decodeJSON(rawURL string, v any) func(*http.Response, io.Reader) error {
	return func(_ *http.Response, body io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(body, 256<<20))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("GET %s: unreadable reply: %v", where(rawURL), err)
		}
		return nil
	}
}

// tableJSON is the table detail as the Storage API sends it.
type tableJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Bucket struct {
		ID string `json:"id"`
	} `json:"bucket"`
	Columns        []string        `json:"columns"`
	ColumnMetadata json.RawMessage `json:"columnMetadata"`
	Metadata       []metaEntry     `json:"metadata"`
	PrimaryKey     []string        `json:"primaryKey"`
	RowsCount      flexInt         `json:"rowsCount"`
	DataSizeBytes  flexInt         `json:"dataSizeBytes"`
	LastImportDate string          `json:"lastImportDate"`
	LastChangeDate string          `json:"lastChangeDate"`
	IsAlias        bool            `json:"isAlias"`
	SourceTable    *struct {
		ColumnMetadata json.RawMessage `json:"columnMetadata"`
	} `json:"sourceTable"`
}

type metaEntry struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Provider string `json:"provider"`
}

func (t *tableJSON) info() TableInfo {
	meta := parseColumnMetadata(t.ColumnMetadata)
	if len(meta) == 0 && t.IsAlias && t.SourceTable != nil {
		meta = parseColumnMetadata(t.SourceTable.ColumnMetadata)
	}
	cols := make([]store.Column, len(t.Columns))
	for i, name := range t.Columns {
		cols[i] = columnFromMetadata(name, meta[name])
	}
	desc, _ := pick(t.Metadata, "KBC.description")
	return TableInfo{
		ID: t.ID, Name: t.Name, BucketID: t.Bucket.ID, Description: desc.Value,
		PrimaryKey: t.PrimaryKey, Columns: cols,
		RowsCount: int64(t.RowsCount), DataSizeBytes: int64(t.DataSizeBytes),
		LastImportDate: t.LastImportDate, LastChangeDate: t.LastChangeDate, IsAlias: t.IsAlias,
	}
}

// parseColumnMetadata accepts the object form {column: [entries]}, the empty array PHP sends for
// "no metadata", and the old per-column form {column: {"type": "..."}}.
func parseColumnMetadata(raw json.RawMessage) map[string][]metaEntry {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var byCol map[string]json.RawMessage
	if json.Unmarshal(raw, &byCol) != nil {
		return nil
	}
	out := make(map[string][]metaEntry, len(byCol))
	for col, v := range byCol {
		var list []metaEntry
		if json.Unmarshal(v, &list) == nil {
			out[col] = list
			continue
		}
		var old struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(v, &old) == nil && old.Type != "" {
			out[col] = []metaEntry{{Key: "KBC.datatype.type", Value: old.Type, Provider: "user"}}
		}
	}
	return out
}

// Providers in order of trust; any other provider ranks after these, in the order listed.
var providerRank = map[string]int{
	"user":                             0,
	"ai-metadata-enrichment":           1,
	"keboola.snowflake-transformation": 2,
}

// pick returns the entry with key from the most trusted provider.
func pick(entries []metaEntry, key string) (metaEntry, bool) {
	best, rank := metaEntry{}, -1
	for _, e := range entries {
		if e.Key != key || strings.TrimSpace(e.Value) == "" {
			continue
		}
		r, ok := providerRank[e.Provider]
		if !ok {
			r = len(providerRank)
		}
		if rank < 0 || r < rank {
			best, rank = e, r
		}
	}
	return best, rank >= 0
}

// columnFromMetadata applies the type cascade: the most trusted provider that states a type wins;
// within a provider KBC.datatype.basetype beats KBC.datatype.type. Precision and scale of a
// NUMERIC/DECIMAL come from that provider's KBC.datatype.length ("p,s") or from the type itself.
// A column nobody typed is a STRING, as in the source.
func columnFromMetadata(name string, entries []metaEntry) store.Column {
	col := store.Column{Name: name, Type: store.TypeString}
	if d, ok := pick(entries, "KBC.description"); ok {
		col.Description = d.Value
	}
	type provided struct{ base, native, length string }
	byProvider := map[string]*provided{}
	var order []string
	for _, e := range entries {
		p := byProvider[e.Provider]
		if p == nil {
			p = &provided{}
			byProvider[e.Provider] = p
			order = append(order, e.Provider)
		}
		v := strings.TrimSpace(e.Value)
		switch e.Key {
		case "KBC.datatype.basetype":
			p.base = v
		case "KBC.datatype.type":
			p.native = v
		case "KBC.datatype.length":
			p.length = v
		}
	}
	best, bestRank := "", -1
	for _, prov := range order {
		p := byProvider[prov]
		if p.base == "" && p.native == "" {
			continue
		}
		r, ok := providerRank[prov]
		if !ok {
			r = len(providerRank)
		}
		if bestRank < 0 || r < bestRank {
			best, bestRank = prov, r
		}
	}
	if bestRank < 0 {
		return col
	}
	p := byProvider[best]
	t := p.base
	if t == "" {
		t = p.native
	}
	col.Type = mapType(t, p.length)
	return col
}

// mapType maps a Keboola base type or a backend's native type to a store column type.
func mapType(t, length string) string {
	t = strings.ToUpper(strings.TrimSpace(t))
	args := ""
	if i := strings.IndexByte(t, '('); i >= 0 {
		args = strings.TrimSuffix(strings.TrimSpace(t[i+1:]), ")")
		t = strings.TrimSpace(t[:i])
	}
	switch t {
	case "STRING", "VARCHAR", "TEXT", "CHAR", "CHARACTER", "NVARCHAR", "NCHAR", "CHARACTER VARYING":
		return store.TypeString
	case "INTEGER", "INT", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT", "INT64":
		return store.TypeInteger
	case "NUMERIC", "DECIMAL", "NUMBER":
		if length == "" {
			length = args
		}
		if dec, ok := decimalType(length); ok {
			return dec
		}
		return store.TypeNumeric
	case "FLOAT", "DOUBLE", "REAL", "FLOAT4", "FLOAT8", "FLOAT64", "DOUBLE PRECISION":
		return store.TypeNumeric
	case "BOOLEAN", "BOOL":
		return store.TypeBoolean
	case "DATE":
		return store.TypeDate
	case "TIMESTAMP", "DATETIME":
		return store.TypeTimestamp
	case "TIMESTAMP_NTZ":
		return store.TypeTimestampNTZ
	case "TIMESTAMP_TZ", "TIMESTAMP_LTZ":
		return store.TypeTimestampTZ
	}
	return store.TypeString
}

// decimalType reads "p,s" (or "p") into DECIMAL(p,s) when it is a valid decimal shape.
func decimalType(length string) (string, bool) {
	parts := strings.Split(length, ",")
	if len(parts) > 2 || strings.TrimSpace(parts[0]) == "" {
		return "", false
	}
	p, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || p < 1 || p > 38 {
		return "", false
	}
	s := 0
	if len(parts) == 2 {
		if s, err = strconv.Atoi(strings.TrimSpace(parts[1])); err != nil || s < 0 || s > p {
			return "", false
		}
	}
	return fmt.Sprintf("DECIMAL(%d,%d)", p, s), true
}

// flexInt decodes a JSON number, a numeric string or null.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*f = flexInt(n)
	return nil
}

// flexString decodes a JSON string or number (job and file ids come as either).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		s = ""
	}
	*f = flexString(s)
	return nil
}
