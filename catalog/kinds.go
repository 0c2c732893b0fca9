package catalog

import (
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// kind is how the profiler handles a column's values. Every value becomes a uint64 key whose
// order is the values' order (for text: a hash, only equality matters), so that one radix sort
// gives the exact distinct count and the percentiles.
type kind int

const (
	kBool kind = iota
	kInt
	kFloat
	kDecimal // unscaled integer with a fixed scale, precision ≤ 18
	kDate    // days since 1970-01-01
	kTime    // microseconds since 1970-01-01 UTC
	kString  // text, including types shown as text (TIME, BLOB, nested types)
)

func (k kind) category() string {
	switch k {
	case kBool:
		return Boolean
	case kInt, kFloat, kDecimal:
		return Numeric
	case kDate:
		return Date
	case kTime:
		return Timestamp
	}
	return String
}

// colType is a column's type in one file: how it is handled and DuckDB's name for it.
type colType struct {
	kind  kind
	name  string
	scale int32 // kDecimal
	tz    bool  // kTime: TIMESTAMP WITH TIME ZONE
}

func typeOf(dt arrow.DataType) colType {
	switch t := dt.(type) {
	case *arrow.BooleanType:
		return colType{kind: kBool, name: "BOOLEAN"}
	case *arrow.Int8Type:
		return colType{kind: kInt, name: "TINYINT"}
	case *arrow.Int16Type:
		return colType{kind: kInt, name: "SMALLINT"}
	case *arrow.Int32Type:
		return colType{kind: kInt, name: "INTEGER"}
	case *arrow.Int64Type:
		return colType{kind: kInt, name: "BIGINT"}
	case *arrow.Uint8Type:
		return colType{kind: kInt, name: "UTINYINT"}
	case *arrow.Uint16Type:
		return colType{kind: kInt, name: "USMALLINT"}
	case *arrow.Uint32Type:
		return colType{kind: kInt, name: "UINTEGER"}
	case *arrow.Uint64Type:
		return colType{kind: kFloat, name: "UBIGINT"} // may exceed int64
	case *arrow.Float16Type, *arrow.Float32Type:
		return colType{kind: kFloat, name: "FLOAT"}
	case *arrow.Float64Type:
		return colType{kind: kFloat, name: "DOUBLE"}
	case *arrow.Decimal128Type:
		name := fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
		if t.Precision > 18 {
			return colType{kind: kFloat, name: name}
		}
		return colType{kind: kDecimal, name: name, scale: t.Scale}
	case *arrow.Date32Type, *arrow.Date64Type:
		return colType{kind: kDate, name: "DATE"}
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return colType{kind: kTime, name: "TIMESTAMP WITH TIME ZONE", tz: true}
		}
		return colType{kind: kTime, name: "TIMESTAMP"}
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return colType{kind: kString, name: "VARCHAR"}
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.BinaryViewType, *arrow.FixedSizeBinaryType:
		return colType{kind: kString, name: "BLOB"}
	case *arrow.Time32Type, *arrow.Time64Type:
		return colType{kind: kString, name: "TIME"}
	case *arrow.DictionaryType:
		// Dictionary arrays are read through their text; statistics as for text.
		return colType{kind: kString, name: typeOf(t.ValueType).name}
	}
	return colType{kind: kString, name: strings.ToUpper(dt.String())}
}

// unionType is the type a column has across files (union_by_name): the common type when they
// agree, else the smallest one that holds all of them, as DuckDB would pick.
func unionType(types []colType) colType {
	u := types[0]
	for _, t := range types[1:] {
		if t == u {
			continue
		}
		switch {
		case u.kind == kInt && t.kind == kInt:
			u = colType{kind: kInt, name: "BIGINT"}
		case isNumber(u.kind) && isNumber(t.kind):
			u = colType{kind: kFloat, name: "DOUBLE"}
		case (u.kind == kDate || u.kind == kTime) && (t.kind == kDate || t.kind == kTime):
			tz := u.tz || t.tz
			u = colType{kind: kTime, name: "TIMESTAMP", tz: tz}
			if tz {
				u.name = "TIMESTAMP WITH TIME ZONE"
			}
		default:
			return colType{kind: kString, name: "VARCHAR"}
		}
	}
	return u
}

func isNumber(k kind) bool { return k == kInt || k == kFloat || k == kDecimal }

// Order-preserving keys.
func intKey(v int64) uint64 { return uint64(v) ^ 1<<63 }
func keyInt(k uint64) int64 { return int64(k ^ 1<<63) }

func floatKey(f float64) uint64 {
	if f == 0 {
		f = 0 // -0 and 0 are one value
	}
	if math.IsNaN(f) {
		f = math.NaN() // one NaN, sorted after +Inf as in DuckDB
	}
	b := math.Float64bits(f)
	if b>>63 != 0 {
		return ^b
	}
	return b | 1<<63
}

func keyFloat(k uint64) float64 {
	if k>>63 != 0 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}

var pow10 = func() (p [19]float64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return
}()

const microsPerDay = 86400 * 1e6

// value reads element i of arr (not null) as the column's union type u: its key and, for
// numbers, its value.
func value(arr arrow.Array, i int, u colType, seed maphash.Seed) (key uint64, f float64) {
	switch u.kind {
	case kBool:
		if arr.(*array.Boolean).Value(i) {
			return 1, 1
		}
		return 0, 0
	case kInt:
		v := intAt(arr, i)
		return intKey(v), float64(v)
	case kDecimal:
		n := arr.(*array.Decimal128).Value(i)
		v := int64(n.LowBits())
		return intKey(v), float64(v) / pow10[u.scale]
	case kFloat:
		f := floatAt(arr, i)
		return floatKey(f), f
	case kDate:
		d := daysAt(arr, i)
		return intKey(d), float64(d)
	case kTime:
		us := microsAt(arr, i)
		return intKey(us), float64(us)
	}
	return maphash.String(seed, textAt(arr, i)), 0
}

func intAt(arr arrow.Array, i int) int64 {
	switch a := arr.(type) {
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Uint32:
		return int64(a.Value(i))
	case *array.Uint16:
		return int64(a.Value(i))
	case *array.Uint8:
		return int64(a.Value(i))
	case *array.Uint64:
		return int64(a.Value(i))
	}
	return 0
}

func floatAt(arr arrow.Array, i int) float64 {
	switch a := arr.(type) {
	case *array.Float64:
		return a.Value(i)
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Float16:
		return float64(a.Value(i).Float32())
	case *array.Uint64:
		return float64(a.Value(i))
	case *array.Decimal128:
		return a.Value(i).ToFloat64(arr.DataType().(*arrow.Decimal128Type).Scale)
	}
	return float64(intAt(arr, i))
}

func daysAt(arr arrow.Array, i int) int64 {
	switch a := arr.(type) {
	case *array.Date32:
		return int64(a.Value(i))
	case *array.Date64:
		return floorDiv(int64(a.Value(i)), 86400000)
	}
	return 0
}

func microsAt(arr arrow.Array, i int) int64 {
	switch a := arr.(type) {
	case *array.Timestamp:
		v := int64(a.Value(i))
		switch a.DataType().(*arrow.TimestampType).Unit {
		case arrow.Second:
			return v * 1e6
		case arrow.Millisecond:
			return v * 1e3
		case arrow.Nanosecond:
			return floorDiv(v, 1e3)
		}
		return v
	}
	return daysAt(arr, i) * microsPerDay
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// textAt is element i as DuckDB casts it to VARCHAR.
func textAt(arr arrow.Array, i int) string {
	switch a := arr.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.StringView:
		return a.Value(i)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Int64, *array.Int32, *array.Int16, *array.Int8, *array.Uint32, *array.Uint16, *array.Uint8:
		return strconv.FormatInt(intAt(arr, i), 10)
	case *array.Uint64:
		return strconv.FormatUint(a.Value(i), 10)
	case *array.Float64, *array.Float32, *array.Float16:
		return formatFloat(floatAt(arr, i))
	case *array.Decimal128:
		return formatDecimal(a.Value(i), a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Date32, *array.Date64:
		return formatDay(daysAt(arr, i))
	case *array.Timestamp:
		return formatMicros(microsAt(arr, i), a.DataType().(*arrow.TimestampType).TimeZone != "")
	case *array.Dictionary:
		return textAt(a.Dictionary(), a.GetValueIndex(i))
	}
	return arr.ValueStr(i)
}

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func formatDecimal(n decimal128.Num, scale int32) string {
	s := n.BigInt().String()
	if scale <= 0 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for len(s) <= int(scale) {
		s = "0" + s
	}
	s = s[:len(s)-int(scale)] + "." + s[len(s)-int(scale):]
	if neg {
		s = "-" + s
	}
	return s
}

func formatDay(d int64) string {
	return time.Unix(d*86400, 0).UTC().Format("2006-01-02")
}

func formatMicros(us int64, tz bool) string {
	t := time.UnixMicro(us).UTC()
	s := t.Format("2006-01-02 15:04:05.999999")
	if tz {
		s += "+00"
	}
	return s
}

// keyText is the text of a key of kind k (for kinds whose key holds the value).
func keyText(k uint64, t colType) string {
	switch t.kind {
	case kBool:
		return strconv.FormatBool(k == 1)
	case kInt:
		return strconv.FormatInt(keyInt(k), 10)
	case kDecimal:
		return formatDecimal(decimal128.FromI64(keyInt(k)), t.scale)
	case kFloat:
		return formatFloat(keyFloat(k))
	case kDate:
		return formatDay(keyInt(k))
	case kTime:
		return formatMicros(keyInt(k), t.tz)
	}
	return ""
}
