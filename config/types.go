package config

import "time"

// Strategies a table can be synced with.
const (
	FullRefresh = "full_refresh"
	Incremental = "incremental"
	Partitioned = "partitioned"
)

// Partition granularities and the file-name layout of their partition keys.
const (
	Month = "month" // YYYY_MM
	Day   = "day"   // YYYY_MM_DD
	Year  = "year"  // YYYY
)

// SourceJira marks catalogue tables fed by Jira webhooks (the jira block of instance.yaml), not
// by a data_source connector: syncs skip them, the Jira stages write them.
const SourceJira = "jira"

// Table is one entry of the table catalogue (docs/data_description.md and docs/datasets/*.md).
type Table struct {
	ID                    string        `json:"id"`
	Name                  string        `json:"name"`
	Description           string        `json:"description"`
	PrimaryKey            []string      `json:"primary_key"`
	SyncStrategy          string        `json:"sync_strategy"`
	IncrementalWindowDays int           `json:"incremental_window_days,omitempty"`
	PartitionBy           string        `json:"partition_by,omitempty"`
	PartitionGranularity  string        `json:"partition_granularity,omitempty"`
	ForeignKeys           []ForeignKey  `json:"foreign_keys,omitempty"`
	WhereFilters          []WhereFilter `json:"where_filters,omitempty"`
	Folder                string        `json:"folder"` // resolved: table.folder > folder_mapping[bucket] > bucket
	MaxHistoryDays        int           `json:"max_history_days,omitempty"`
	Dataset               string        `json:"dataset,omitempty"`
	InitialLoadChunkDays  int           `json:"initial_load_chunk_days,omitempty"`

	// Additions over the original catalogue.
	Source   string    `json:"source"`             // configured connector; defaults to data_source.type
	Schedule string    `json:"schedule,omitempty"` // "every 6h", "daily 07:00,13:00", or a cron expression
	Private  bool      `json:"private,omitempty"`
	Columns  []Column  `json:"columns,omitempty"` // declared column types (CSV sources)
	CSV      *CSVTable `json:"csv,omitempty"`     // per-table CSV options (csv source)

	// Where the table was defined, for error messages.
	File string `json:"-"`
	Line int    `json:"-"`
}

// Bucket is the Keboola bucket id: everything before the last dot of ID.
func (t Table) Bucket() string {
	for i := len(t.ID) - 1; i >= 0; i-- {
		if t.ID[i] == '.' {
			return t.ID[:i]
		}
	}
	return t.ID
}

// Synced reports whether the table is pulled from a data source by sync runs (as opposed to
// being written by the Jira stages).
func (t Table) Synced() bool { return t.Source != SourceJira }

// IsPartitioned reports whether the table is written as one file per partition key.
func (t Table) IsPartitioned() bool {
	return t.SyncStrategy == Partitioned || (t.SyncStrategy == Incremental && t.PartitionBy != "")
}

// ForeignKey links a column to "<table name>.<column>".
type ForeignKey struct {
	Column      string `json:"column" yaml:"column"`
	References  string `json:"references" yaml:"references"`
	Description string `json:"description,omitempty" yaml:"description"`
}

// WhereFilter is a source-side row filter; date placeholders in Values are resolved at load.
type WhereFilter struct {
	Column   string   `json:"column" yaml:"column"`
	Operator string   `json:"operator" yaml:"operator"` // eq, ne, gt, ge, lt, le
	Values   []string `json:"values" yaml:"values"`
}

// Column is a declared column type, e.g. {name: amount, type: "DECIMAL(12,2)"}.
type Column struct {
	Name        string `json:"name" yaml:"name"`
	Type        string `json:"type" yaml:"type"`
	Description string `json:"description,omitempty" yaml:"description"`
}

// CSVTable says where a csv-source table's files are and how they are written.
type CSVTable struct {
	Path      string `json:"path" yaml:"path"`           // a file, a glob or a folder; relative to data_source.csv.path
	Delimiter string `json:"delimiter" yaml:"delimiter"` // default ","
	Quote     string `json:"quote" yaml:"quote"`         // default `"`
	Header    *bool  `json:"header" yaml:"header"`       // default true
	Encoding  string `json:"encoding" yaml:"encoding"`   // utf-8 (BOM stripped) or latin-1/windows-1252
}

// Catalogue is the merged table catalogue.
type Catalogue struct {
	Tables        []Table
	FolderMapping map[string]string
}

// SyncedTables lists the tables that sync runs pull from data sources, in catalogue order.
func (c *Catalogue) SyncedTables() []Table {
	var out []Table
	for _, t := range c.Tables {
		if t.Synced() {
			out = append(out, t)
		}
	}
	return out
}

// Clock lets tests fix "now" for where-filter placeholders and windows.
type Clock func() time.Time
