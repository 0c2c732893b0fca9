// Package store owns what the server keeps on disk: the bbolt application state, the Parquet
// writer and reader, atomic file publishing and the manifest.
package store

// Column types of the reference's type map. DECIMAL(p,s) keeps its precision and scale.
const (
	TypeString       = "STRING"
	TypeInteger      = "INTEGER"
	TypeNumeric      = "NUMERIC"
	TypeBoolean      = "BOOLEAN"
	TypeDate         = "DATE"
	TypeTimestamp    = "TIMESTAMP"
	TypeTimestampNTZ = "TIMESTAMP_NTZ"
	TypeTimestampTZ  = "TIMESTAMP_TZ"
)

// Column is a named column with a source type ("" = infer).
type Column struct {
	Name        string `json:"name"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
}

// CSVFormat describes how CSV files are written.
type CSVFormat struct {
	Delimiter rune   `json:"delimiter"` // default ','
	Quote     rune   `json:"quote"`     // default '"'
	Header    bool   `json:"header"`    // the first line of each file names the columns
	Encoding  string `json:"encoding"`  // "" or utf-8 (a BOM is stripped), latin-1, windows-1252
}
