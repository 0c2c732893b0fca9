// Package catalog owns the data catalog: the profiler that turns a table's Parquet into a
// profile (column statistics, alerts, sample rows), the profiles files analysts read offline
// (data/metadata/profiles.json for public tables, data/metadata/private/profiles.json for
// private ones), the relations between tables, the business metrics under docs/metrics, and the
// access-filtered views the portal serves.
package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Type categories of a column, as the portal shows them.
const (
	Numeric   = "NUMERIC"
	String    = "STRING"
	Date      = "DATE"
	Timestamp = "TIMESTAMP"
	Boolean   = "BOOLEAN"
)

// Float is a statistic rounded to 2 decimals; NaN and ±Inf (which JSON cannot hold) are null.
type Float float64

// F rounds f to 2 decimals.
func F(f float64) Float {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Float(f)
	}
	r := math.Round(f*100) / 100
	if math.IsInf(r, 0) { // f*100 overflowed: f is far beyond 2-decimal precision anyway
		r = f
	}
	if r == 0 {
		r = 0 // no -0
	}
	return Float(r)
}

// Null is the Float that marshals as null.
var Null = Float(math.NaN())

// Valid reports whether f is a finite number.
func (f Float) Valid() bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

func (f Float) MarshalJSON() ([]byte, error) {
	if !f.Valid() {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(F(float64(f))), 'f', -1, 64), nil
}

func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Null
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// TableProfile is one table's catalog entry. Field names follow the original profiles.json,
// which the portal and analysts' tools read.
type TableProfile struct {
	TableID         string          `json:"table_id"`
	Name            string          `json:"name"`
	Description     string          `json:"description"`
	PrimaryKey      string          `json:"primary_key"` // comma-separated, as written in the catalogue
	SyncStrategy    string          `json:"sync_strategy"`
	RowCount        int64           `json:"row_count"` // all rows, also when the statistics are sampled
	ColumnCount     int             `json:"column_count"`
	FileSizeMB      Float           `json:"file_size_mb"`
	Files           int             `json:"files"`
	AvgCompleteness Float           `json:"avg_completeness"`
	MissingCells    int64           `json:"missing_cells"`
	MissingCellsPct Float           `json:"missing_cells_pct"`
	DuplicateRows   int64           `json:"duplicate_rows"` // rows sharing a primary key with another row
	VariableTypes   map[string]int  `json:"variable_types"`
	DateRange       *DateRange      `json:"date_range"`
	Alerts          []TableAlert    `json:"alerts"`
	Sampled         bool            `json:"sampled"`
	SampledRows     int64           `json:"sampled_rows,omitempty"` // rows the statistics were taken on, when sampled
	LastSync        *time.Time      `json:"last_sync"`
	Freshness       *Freshness      `json:"freshness,omitempty"`
	RelatedTables   []Relation      `json:"related_tables"`
	UsedByMetrics   []MetricRef     `json:"used_by_metrics"`
	Columns         []ColumnProfile `json:"columns"`
	SampleRows      []SampleRow     `json:"sample_rows"`
	ProfiledAt      time.Time       `json:"profiled_at"`
	ProfileSeconds  Float           `json:"profile_seconds"`
	Stale           bool            `json:"_stale,omitempty"`
	StaleError      string          `json:"_stale_error,omitempty"`
}

// DateRange is the span of the first date or timestamp column that has data.
type DateRange struct {
	Column   string `json:"column"`
	Earliest string `json:"earliest"`
	Latest   string `json:"latest"`
}

// Freshness says how current a table is: when it last synced and the newest date it holds.
type Freshness struct {
	LastSync   *time.Time `json:"last_sync"`
	AgeHours   *Float     `json:"age_hours,omitempty"` // filled when served
	LatestData string     `json:"latest_data,omitempty"`
	Schedule   string     `json:"schedule,omitempty"`
}

// TableAlert is a column alert listed at table level.
type TableAlert struct {
	Column  string `json:"column"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Alert is a data-quality finding about one column.
type Alert struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ColumnProfile holds one column's statistics; exactly one *Stats block is set, by category.
type ColumnProfile struct {
	Name            string        `json:"name"`
	Type            string        `json:"type"` // DuckDB's name of the type, e.g. DECIMAL(12,2)
	TypeCategory    string        `json:"type_category"`
	CompletenessPct Float         `json:"completeness_pct"`
	NullCount       int64         `json:"null_count"`
	MissingPct      Float         `json:"missing_pct"`
	UniqueCount     int64         `json:"unique_count"`
	UniquePct       Float         `json:"unique_pct"` // of the non-null values
	SampleValues    []string      `json:"sample_values"`
	IsPrimaryKey    bool          `json:"is_primary_key"`
	Alerts          []Alert       `json:"alerts"`
	NumericStats    *NumericStats `json:"numeric_stats,omitempty"`
	StringStats     *StringStats  `json:"string_stats,omitempty"`
	DateStats       *DateStats    `json:"date_stats,omitempty"`
	BooleanStats    *BooleanStats `json:"boolean_stats,omitempty"`
}

// NumericStats describes a numeric column. Percentiles interpolate like quantile_cont.
type NumericStats struct {
	Min         Float      `json:"min"`
	Max         Float      `json:"max"`
	Mean        Float      `json:"mean"`
	Median      Float      `json:"median"`
	Stddev      Float      `json:"stddev"` // sample standard deviation
	P5          Float      `json:"p5"`
	P25         Float      `json:"p25"`
	P75         Float      `json:"p75"`
	P95         Float      `json:"p95"`
	Zeros       int64      `json:"zeros"`
	ZerosPct    Float      `json:"zeros_pct"`
	Negative    int64      `json:"negative"`
	NegativePct Float      `json:"negative_pct"`
	Histogram   *Histogram `json:"histogram,omitempty"` // 15 equal-width bins; absent when min = max
}

// Histogram is a bar chart: one label per bin and its count.
type Histogram struct {
	Bins   []string `json:"bins"`
	Counts []int64  `json:"counts"`
}

// StringStats describes a text column; TopValues only for categorical columns (≤ 50 distinct).
type StringStats struct {
	MinLength int        `json:"min_length"`
	MaxLength int        `json:"max_length"`
	AvgLength Float      `json:"avg_length"`
	TopValues []TopValue `json:"top_values"`
}

// TopValue is a frequent value and its share of the non-null values.
type TopValue struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
	Pct   Float  `json:"pct"`
}

// DateStats describes a date or timestamp column (timestamps counted by their UTC date).
type DateStats struct {
	Earliest  string     `json:"earliest"`
	Latest    string     `json:"latest"`
	SpanDays  int64      `json:"span_days"`
	Histogram *Histogram `json:"histogram,omitempty"` // per quarter, labels YYYY-Qn, non-empty quarters
}

// BooleanStats counts a boolean column's values.
type BooleanStats struct {
	TrueCount  int64 `json:"true_count"`
	FalseCount int64 `json:"false_count"`
	TruePct    Float `json:"true_pct"` // of the non-null values
}

// Relation is a foreign key seen from one table: belongs_to for its own keys, has_many for
// keys of other tables that point at it.
type Relation struct {
	Table         string `json:"table"`
	JoinColumn    string `json:"join_column"`
	ForeignColumn string `json:"foreign_column"`
	Direction     string `json:"direction"`
	Description   string `json:"description"`
}

// MetricRef names a metric that uses a table; File is "<category>/<file>.yml".
type MetricRef struct {
	Name   string   `json:"name"`
	File   string   `json:"file"`
	Tables []string `json:"tables,omitempty"` // every table the metric uses
}

// SampleRow is one of the table's first rows: every value as text, or null. It is a JSON
// object whose keys keep the column order.
type SampleRow struct {
	Columns []string
	Values  []*string
}

func (r SampleRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range r.Columns {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		v, _ := json.Marshal(r.Values[i])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (r *SampleRow) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("sample row: want an object")
	}
	r.Columns, r.Values = nil, nil
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		var v *string
		if err := dec.Decode(&v); err != nil {
			return err
		}
		r.Columns = append(r.Columns, t.(string))
		r.Values = append(r.Values, v)
	}
	return nil
}
