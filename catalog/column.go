package catalog

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Limits of the per-column summaries.
const (
	sampleValues   = 5  // distinct example values per column
	sampleRows     = 5  // first rows of the table
	categoricalMax = 50 // a text column with at most this many distinct values is categorical
	topValues      = 10
	histogramBins  = 15
)

// accum collects one column's values. Keys are kept for every non-null value (8 bytes each)
// so that the distinct count and the percentiles are exact; the other statistics stream.
type accum struct {
	t      colType
	stride int64 // only global rows r with r % stride == 0 are profiled
	seed   maphash.Seed

	rows, nulls int64
	keys        []uint64

	trues, falses int64 // kBool

	minLen, maxLen int // kString
	sumLen         int64
	top            map[string]int64 // exact counts while the column looks categorical
	topOver        bool             // more than categoricalMax distinct: top is dropped

	samples    []uint64 // keys of the sample values
	sampleText []string
	first      []*string // the first rows' values as text
	expect     int64     // rows to be profiled
	scr        *scratch
}

// scratch is a worker's key and sort buffers, reused from column to column so that memory
// stays at one column's worth instead of growing with garbage.
type scratch struct {
	keys, buf []uint64
}

func (s *scratch) take(n int64) []uint64 {
	if int64(cap(s.keys)) < n {
		s.keys = make([]uint64, 0, n)
	}
	k := s.keys[:0]
	s.keys = nil // owned by one column at a time
	return k
}

// newAccum starts a column of about rows profiled rows.
func newAccum(t colType, stride, rows int64, seed maphash.Seed, scr *scratch) *accum {
	a := &accum{t: t, stride: stride, seed: seed, minLen: -1, expect: rows, scr: scr}
	switch t.kind {
	case kString:
		a.top = map[string]int64{}
	case kBool:
	default:
		a.keys = scr.take(rows) // no regrowing copies
	}
	return a
}

// skip adds n rows the file does not have the column for (null, as with union_by_name).
func (a *accum) skip(base, n int64) {
	for r := base; r < base+n && r < sampleRows; r++ {
		a.first = append(a.first, nil)
	}
	taken := n
	if a.stride > 1 {
		taken = ceilDiv(base+n, a.stride) - ceilDiv(base, a.stride)
	}
	a.rows += taken
	a.nulls += taken
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// feed adds the values of arr, whose first element is global row base.
func (a *accum) feed(arr arrow.Array, from colType, base int64) {
	n := arr.Len()
	for i := 0; i < n && base+int64(i) < sampleRows; i++ {
		if arr.IsNull(i) {
			a.first = append(a.first, nil)
		} else {
			s := textAt(arr, i)
			a.first = append(a.first, &s)
		}
	}
	if a.stride == 1 && a.fast(arr, from) {
		return
	}
	for i := range n {
		if a.stride > 1 && (base+int64(i))%a.stride != 0 {
			continue
		}
		a.rows++
		if arr.IsNull(i) {
			a.nulls++
			continue
		}
		switch a.t.kind {
		case kString:
			a.addString(textAt(arr, i))
		case kBool:
			a.addBool(arr.(*array.Boolean).Value(i))
		default:
			k, _ := value(arr, i, a.t, a.seed)
			a.addKey(k, arr, i)
		}
	}
}

// fast handles the common array types without a per-value type switch.
func (a *accum) fast(arr arrow.Array, from colType) bool {
	switch x := arr.(type) {
	case *array.Int64:
		if a.t.kind != kInt {
			return false
		}
		keyLoop(a, arr, x.Int64Values(), func(v int64) uint64 { return intKey(v) })
	case *array.Int32:
		if a.t.kind != kInt {
			return false
		}
		keyLoop(a, arr, x.Int32Values(), func(v int32) uint64 { return intKey(int64(v)) })
	case *array.Float64:
		if a.t.kind != kFloat {
			return false
		}
		keyLoop(a, arr, x.Float64Values(), floatKey)
	case *array.Date32:
		if a.t.kind != kDate {
			return false
		}
		keyLoop(a, arr, x.Date32Values(), func(v arrow.Date32) uint64 { return intKey(int64(v)) })
	case *array.Timestamp:
		if a.t.kind != kTime || x.DataType().(*arrow.TimestampType).Unit != arrow.Microsecond {
			return false
		}
		keyLoop(a, arr, x.TimestampValues(), func(v arrow.Timestamp) uint64 { return intKey(int64(v)) })
	case *array.Decimal128:
		if a.t.kind != kDecimal || from.scale != a.t.scale {
			return false
		}
		for i := range x.Len() {
			a.rows++
			if x.IsNull(i) {
				a.nulls++
				continue
			}
			a.addKey(intKey(int64(x.Value(i).LowBits())), arr, i)
		}
	case *array.String:
		if a.t.kind != kString {
			return false
		}
		for i := range x.Len() {
			a.rows++
			if x.IsNull(i) {
				a.nulls++
				continue
			}
			a.addString(x.Value(i))
		}
	case *array.Boolean:
		if a.t.kind != kBool {
			return false
		}
		for i := range x.Len() {
			a.rows++
			if x.IsNull(i) {
				a.nulls++
				continue
			}
			a.addBool(x.Value(i))
		}
	default:
		return false
	}
	return true
}

func keyLoop[T any](a *accum, arr arrow.Array, vals []T, key func(T) uint64) {
	a.rows += int64(len(vals))
	if arr.NullN() == 0 && len(a.samples) >= sampleValues {
		for _, v := range vals {
			a.keys = append(a.keys, key(v))
		}
		return
	}
	for i, v := range vals {
		if arr.IsNull(i) {
			a.nulls++
			continue
		}
		a.addKey(key(v), arr, i)
	}
}

func (a *accum) addKey(k uint64, arr arrow.Array, i int) {
	a.keys = append(a.keys, k)
	if len(a.samples) < sampleValues && !slices.Contains(a.samples, k) {
		a.samples = append(a.samples, k)
		a.sampleText = append(a.sampleText, textAt(arr, i))
	}
}

func (a *accum) addBool(b bool) {
	k := uint64(0)
	if b {
		a.trues++
		k = 1
	} else {
		a.falses++
	}
	if len(a.samples) < sampleValues && !slices.Contains(a.samples, k) {
		a.samples = append(a.samples, k)
		a.sampleText = append(a.sampleText, keyText(k, a.t))
	}
}

func (a *accum) addString(s string) {
	l := utf8.RuneCountInString(s)
	if a.minLen < 0 || l < a.minLen {
		a.minLen = l
	}
	a.maxLen = max(a.maxLen, l)
	a.sumLen += int64(l)
	if !a.topOver {
		if c, ok := a.top[s]; ok {
			a.top[s] = c + 1
			return // seen before: neither a new distinct value nor a new sample
		}
		if len(a.top) < categoricalMax {
			a.top[s] = 1
		} else {
			// Not categorical after all: from now on distinct values are counted by hash,
			// starting with the ones seen so far.
			a.topOver = true
			a.keys = a.scr.take(a.expect)
			for v := range a.top {
				a.keys = append(a.keys, maphash.String(a.seed, v))
			}
			a.top = nil
		}
	}
	k := maphash.String(a.seed, s)
	if a.topOver {
		a.keys = append(a.keys, k)
	}
	if len(a.samples) < sampleValues && !slices.Contains(a.samples, k) {
		a.samples = append(a.samples, k)
		a.sampleText = append(a.sampleText, s)
	}
}

// result computes the column's profile; it sorts (and then drops) the keys.
func (a *accum) result(name string) ColumnProfile {
	c := ColumnProfile{Name: name, Type: a.t.name, TypeCategory: a.t.kind.category(),
		NullCount: a.nulls, SampleValues: a.sampleText, Alerts: []Alert{}}
	if c.SampleValues == nil {
		c.SampleValues = []string{}
	}
	nonNull := a.rows - a.nulls
	radixSort(a.keys, &a.scr.buf)
	switch a.t.kind {
	case kBool:
		c.UniqueCount = int64(min(a.trues, 1) + min(a.falses, 1))
		c.BooleanStats = &BooleanStats{TrueCount: a.trues, FalseCount: a.falses, TruePct: pct(a.trues, nonNull)}
	case kString:
		if a.topOver {
			c.UniqueCount = distinct(a.keys)
		} else {
			c.UniqueCount = int64(len(a.top))
		}
		c.StringStats = a.stringStats(nonNull)
	case kDate, kTime:
		c.UniqueCount = distinct(a.keys)
		c.DateStats = a.dateStats()
	default:
		c.UniqueCount = distinct(a.keys)
		c.NumericStats = a.numericStats()
	}
	if cap(a.keys) > cap(a.scr.keys) {
		a.scr.keys = a.keys[:0]
	}
	a.keys = nil
	c.CompletenessPct = pct(nonNull, a.rows)
	c.MissingPct = pct(a.nulls, a.rows)
	c.UniquePct = pct(c.UniqueCount, nonNull)
	c.Alerts = columnAlerts(c, nonNull)
	return c
}

// pct is 100·n/of rounded, 0 when of is 0.
func pct(n, of int64) Float {
	if of == 0 {
		return 0
	}
	return F(100 * float64(n) / float64(of))
}

func distinct(sorted []uint64) int64 {
	var n int64
	for i, k := range sorted {
		if i == 0 || k != sorted[i-1] {
			n++
		}
	}
	return n
}

func (a *accum) num(k uint64) float64 {
	switch a.t.kind {
	case kInt:
		return float64(keyInt(k))
	case kDecimal:
		return float64(keyInt(k)) / pow10[a.t.scale]
	}
	return keyFloat(k)
}

// quantile interpolates between the two nearest ranks, like DuckDB's quantile_cont.
func (a *accum) quantile(q float64) float64 {
	pos := q * float64(len(a.keys)-1)
	lo := math.Floor(pos)
	vlo := a.num(a.keys[int(lo)])
	if lo == pos {
		return vlo
	}
	vhi := a.num(a.keys[int(lo)+1])
	return vlo + (pos-lo)*(vhi-vlo)
}

func (a *accum) numericStats() *NumericStats {
	s := &NumericStats{Min: Null, Max: Null, Mean: Null, Median: Null, Stddev: Null, P5: Null, P25: Null, P75: Null, P95: Null}
	n := len(a.keys)
	if n == 0 {
		return s
	}
	mn, mx := a.num(a.keys[0]), a.num(a.keys[n-1])
	s.Min, s.Max = F(mn), F(mx)
	s.Median, s.P5, s.P25, s.P75, s.P95 = F(a.quantile(0.5)), F(a.quantile(0.05)), F(a.quantile(0.25)), F(a.quantile(0.75)), F(a.quantile(0.95))
	// Two passes with compensated summation: accurate to the last digits DuckDB shows.
	var sum, comp float64
	for _, k := range a.keys {
		v := a.num(k)
		switch {
		case v == 0:
			s.Zeros++
		case v < 0:
			s.Negative++
		}
		t := sum + v
		if math.Abs(sum) >= math.Abs(v) {
			comp += (sum - t) + v
		} else {
			comp += (v - t) + sum
		}
		sum = t
	}
	mean := (sum + comp) / float64(n)
	s.Mean = F(mean)
	if n > 1 {
		var ss float64
		for _, k := range a.keys {
			d := a.num(k) - mean
			ss += d * d
		}
		s.Stddev = F(math.Sqrt(ss / float64(n-1)))
	}
	s.ZerosPct, s.NegativePct = pct(s.Zeros, int64(n)), pct(s.Negative, int64(n))
	s.Histogram = a.histogram(mn, mx)
	return s
}

// histogram counts values in 15 equal-width bins from min to max (max in the last bin).
// The original bucketed from the rounded min and max, which could leave the maximum out.
func (a *accum) histogram(lo, hi float64) *Histogram {
	if lo == hi || math.IsNaN(lo) || math.IsInf(lo, 0) || math.IsNaN(hi) || math.IsInf(hi, 0) {
		return nil
	}
	width := (hi - lo) / histogramBins
	h := &Histogram{Bins: make([]string, histogramBins), Counts: make([]int64, histogramBins)}
	for _, k := range a.keys {
		v := a.num(k)
		if math.IsNaN(v) {
			continue
		}
		h.Counts[min(int(math.Floor((v-lo)/width)), histogramBins-1)]++
	}
	for i := range h.Bins {
		h.Bins[i] = binLabel(float64(F(lo+float64(i)*width))) + "-" + binLabel(float64(F(lo+float64(i+1)*width)))
	}
	return h
}

// binLabel shortens a bin edge: 1.2B, 3.4M, 5.6K, 0.25, 12.
func binLabel(v float64) string {
	abs := math.Abs(v)
	switch {
	case abs >= 1e9:
		return fmt.Sprintf("%.1fB", v/1e9)
	case abs >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case abs >= 1e3:
		return fmt.Sprintf("%.1fK", v/1e3)
	case v != math.Trunc(v):
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%d", int64(v))
}

func (a *accum) stringStats(nonNull int64) *StringStats {
	s := &StringStats{MinLength: max(a.minLen, 0), MaxLength: a.maxLen, AvgLength: 0, TopValues: []TopValue{}}
	if nonNull > 0 {
		s.AvgLength = F(float64(a.sumLen) / float64(nonNull))
	}
	if a.topOver {
		return s
	}
	for v, c := range a.top {
		s.TopValues = append(s.TopValues, TopValue{Value: v, Count: c, Pct: pct(c, nonNull)})
	}
	slices.SortFunc(s.TopValues, func(x, y TopValue) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Value, y.Value))
	})
	if len(s.TopValues) > topValues {
		s.TopValues = s.TopValues[:topValues]
	}
	return s
}

func (a *accum) day(k uint64) int64 {
	if a.t.kind == kTime {
		return floorDiv(keyInt(k), microsPerDay)
	}
	return keyInt(k)
}

func (a *accum) dateStats() *DateStats {
	if len(a.keys) == 0 {
		return nil
	}
	first, last := a.day(a.keys[0]), a.day(a.keys[len(a.keys)-1])
	s := &DateStats{Earliest: formatDay(first), Latest: formatDay(last), SpanDays: last - first, Histogram: &Histogram{}}
	// Keys are sorted, so each quarter is one run.
	prev := int64(math.MinInt64)
	for _, k := range a.keys {
		y, m, _ := civil(a.day(k))
		if q := y*4 + (m-1)/3; q != prev {
			s.Histogram.Bins = append(s.Histogram.Bins, fmt.Sprintf("%04d-Q%d", y, (m-1)/3+1))
			s.Histogram.Counts = append(s.Histogram.Counts, 0)
			prev = q
		}
		s.Histogram.Counts[len(s.Histogram.Counts)-1]++
	}
	return s
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm),
// without the cost of time.Time for every value.
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func columnAlerts(c ColumnProfile, nonNull int64) []Alert {
	var out []Alert
	add := func(typ, format string, args ...any) {
		out = append(out, Alert{Type: typ, Message: fmt.Sprintf(format, args...)})
	}
	if c.UniqueCount == 1 && c.NullCount == 0 {
		add("constant", "%s has a single value in every row", c.Name)
	}
	// Exactly unique, not "rounds to 100 %" (the original's rounding flagged near-unique columns).
	if nonNull > 0 && c.NullCount == 0 && c.UniqueCount == nonNull && nonNull > 1 {
		add("unique", "%s has a different value in every row", c.Name)
	}
	switch missing := float64(c.MissingPct); {
	case missing > 30:
		add("high_missing", "%s is missing in %.2f%% of rows", c.Name, missing)
	case missing > 5:
		add("missing", "%s is missing in %.2f%% of rows", c.Name, missing)
	}
	if s := c.NumericStats; s != nil && float64(s.ZerosPct) > 50 {
		add("zeros", "%s is zero in %.2f%% of rows", c.Name, float64(s.ZerosPct))
	}
	if s := c.StringStats; s != nil && c.UniqueCount > 1 && len(s.TopValues) > 0 && float64(s.TopValues[0].Pct) > 60 {
		add("imbalance", "%s is dominated by one value, which covers %.2f%% of rows", c.Name, float64(s.TopValues[0].Pct))
	}
	if c.TypeCategory == String && c.UniqueCount > categoricalMax {
		add("high_cardinality", "%s has %d distinct values", c.Name, c.UniqueCount)
	}
	if out == nil {
		out = []Alert{}
	}
	return out
}
