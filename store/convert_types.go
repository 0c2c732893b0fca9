package store

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// kind is the Arrow representation a column is converted to.
type kind uint8

const (
	kString kind = iota
	kBool
	kInt
	kFloat
	kDecimal
	kDate
	kTimestamp
	kTimestampTZ
)

// colType is a resolved column type; prec and scale are set for kDecimal.
type colType struct {
	kind        kind
	prec, scale int32
}

// parseColumnType maps a source type name (Keboola base type, SQL-ish names) to the type the
// converter writes. Unknown names are strings, so nothing is lost.
func parseColumnType(decl string) colType {
	s := strings.ToUpper(strings.TrimSpace(decl))
	base, args := s, ""
	if i := strings.IndexByte(s, '('); i >= 0 && strings.HasSuffix(s, ")") {
		base, args = strings.TrimSpace(s[:i]), s[i+1:len(s)-1]
	}
	switch base {
	case "STRING", "VARCHAR", "TEXT", "CHAR", "CHARACTER", "NVARCHAR":
		return colType{kind: kString}
	case "INTEGER", "INT", "BIGINT", "SMALLINT", "TINYINT", "INT64", "BYTEINT":
		return colType{kind: kInt}
	case "FLOAT", "DOUBLE", "REAL", "DOUBLE PRECISION", "FLOAT64", "FLOAT8":
		return colType{kind: kFloat}
	case "NUMERIC", "DECIMAL", "NUMBER":
		if args == "" {
			return colType{kind: kFloat}
		}
		p, s, ok := parsePrecScale(args)
		if !ok {
			return colType{kind: kFloat}
		}
		return colType{kind: kDecimal, prec: p, scale: s}
	case "BOOLEAN", "BOOL":
		return colType{kind: kBool}
	case "DATE":
		return colType{kind: kDate}
	case "TIMESTAMP", "TIMESTAMP_NTZ", "DATETIME":
		return colType{kind: kTimestamp}
	case "TIMESTAMP_TZ", "TIMESTAMPTZ", "TIMESTAMP_LTZ", "TIMESTAMP WITH TIME ZONE":
		return colType{kind: kTimestampTZ}
	}
	return colType{kind: kString}
}

func parsePrecScale(args string) (int32, int32, bool) {
	ps := strings.Split(args, ",")
	p, err := strconv.Atoi(strings.TrimSpace(ps[0]))
	if err != nil || p < 1 || p > 38 {
		return 0, 0, false
	}
	s := 0
	if len(ps) == 2 {
		if s, err = strconv.Atoi(strings.TrimSpace(ps[1])); err != nil || s < 0 || s > p {
			return 0, 0, false
		}
	} else if len(ps) > 2 {
		return 0, 0, false
	}
	return int32(p), int32(s), true
}

// String is the canonical type name reported in ConvertReport.Columns.
func (t colType) String() string {
	switch t.kind {
	case kBool:
		return TypeBoolean
	case kInt:
		return TypeInteger
	case kFloat:
		return TypeNumeric
	case kDecimal:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.prec, t.scale)
	case kDate:
		return TypeDate
	case kTimestamp:
		return TypeTimestamp
	case kTimestampTZ:
		return TypeTimestampTZ
	}
	return TypeString
}

func (t colType) arrow() arrow.DataType {
	switch t.kind {
	case kBool:
		return arrow.FixedWidthTypes.Boolean
	case kInt:
		return arrow.PrimitiveTypes.Int64
	case kFloat:
		return arrow.PrimitiveTypes.Float64
	case kDecimal:
		return &arrow.Decimal128Type{Precision: t.prec, Scale: t.scale}
	case kDate:
		return arrow.FixedWidthTypes.Date32
	case kTimestamp:
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case kTimestampTZ:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	}
	return arrow.BinaryTypes.String
}

// unsafeString views b as a string without copying; the result must not outlive b.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseBool accepts true/false, 1/0, yes/no and t/f in any case.
func parseBool(b []byte) (v, ok bool) {
	b = trimSpace(b)
	switch len(b) {
	case 1:
		switch b[0] | 0x20 {
		case '1', 't':
			return true, true
		case '0', 'f':
			return false, true
		}
		return false, false
	case 2:
		return false, b[0]|0x20 == 'n' && b[1]|0x20 == 'o'
	case 3:
		return true, b[0]|0x20 == 'y' && b[1]|0x20 == 'e' && b[2]|0x20 == 's'
	case 4:
		return true, b[0]|0x20 == 't' && b[1]|0x20 == 'r' && b[2]|0x20 == 'u' && b[3]|0x20 == 'e'
	case 5:
		return false, b[0]|0x20 == 'f' && b[1]|0x20 == 'a' && b[2]|0x20 == 'l' && b[3]|0x20 == 's' && b[4]|0x20 == 'e'
	}
	return false, false
}

// parseInt accepts an optionally signed decimal integer; a fraction of zeros ("12.00") is allowed.
func parseInt(b []byte) (int64, bool) {
	b = trimSpace(b)
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var u uint64
	i := 0
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c)
	}
	if i == 0 {
		return 0, false
	}
	if i < len(b) {
		if b[i] != '.' {
			return 0, false
		}
		for _, c := range b[i+1:] {
			if c != '0' {
				return 0, false
			}
		}
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

func parseFloat(b []byte) (float64, bool) {
	v, err := strconv.ParseFloat(unsafeString(trimSpace(b)), 64)
	return v, err == nil
}

// parseDecimal parses plain decimal notation into a decimal128 of the given precision and scale,
// rounding extra fraction digits half away from zero. Exponent notation goes through arrow's
// slower parser.
func parseDecimal(b []byte, prec, scale int32) (decimal128.Num, bool) {
	b = trimSpace(b)
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	var (
		small    uint64 // the value while it has at most 18 digits
		big      decimal128.Num
		isBig    bool
		nd       int // significant digits so far
		frac     int32
		seenDot  bool
		roundUp  bool
		dropping bool
	)
	add := func(d byte) {
		if !isBig && nd < 18 {
			small = small*10 + uint64(d)
		} else {
			if !isBig {
				big, isBig = decimal128.FromU64(small), true
			}
			big = big.Mul(decimal128.FromU64(10)).Add(decimal128.FromU64(uint64(d)))
		}
		if nd > 0 || d != 0 {
			nd++
		}
	}
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if seenDot {
				if frac == scale {
					if !dropping {
						roundUp = c >= '5'
						dropping = true
					}
					continue
				}
				frac++
			}
			add(c - '0')
		case c == '.' && !seenDot:
			seenDot = true
		case c == 'e' || c == 'E':
			n, err := decimal128.FromString(unsafeString(b), prec, scale)
			if err != nil || !n.FitsInPrecision(prec) {
				return n, false
			}
			if neg {
				n = n.Negate()
			}
			return n, true
		default:
			return decimal128.Num{}, false
		}
	}
	if len(b) == 0 || (len(b) == 1 && seenDot) {
		return decimal128.Num{}, false
	}
	for ; frac < scale; frac++ {
		add(0)
	}
	n := big
	if !isBig {
		n = decimal128.FromU64(small)
	}
	if roundUp {
		n = n.Add(decimal128.FromU64(1))
	}
	if !n.FitsInPrecision(prec) {
		return decimal128.Num{}, false
	}
	if neg {
		n = n.Negate()
	}
	return n, true
}

// daysFromCivil counts days since 1970-01-01 in the proleptic Gregorian calendar.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// dateTime is what parseDateTime found in a value.
type dateTime struct {
	days      int64 // the date as written
	micros    int64 // microseconds since the epoch, in UTC when an offset was given
	hasTime   bool
	hasOffset bool
}

// parseDateTime parses ISO 8601 / SQL dates and timestamps: YYYY-MM-DD, optionally followed by
// ' ' or 'T', HH:MM[:SS[.fraction]], and an offset Z, UTC, ±HH, ±HHMM or ±HH:MM. Fractions
// beyond microseconds are truncated.
func parseDateTime(b []byte) (dt dateTime, ok bool) {
	b = trimSpace(b)
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return dt, false
	}
	y, ok1 := digits(b[0:4])
	m, ok2 := digits(b[5:7])
	d, ok3 := digits(b[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return dt, false
	}
	dt.days = daysFromCivil(y, m, d)
	dt.micros = dt.days * 86400e6
	b = b[10:]
	if len(b) == 0 {
		return dt, true
	}
	if b[0] != ' ' && b[0] != 'T' {
		return dt, false
	}
	b = b[1:]
	if len(b) < 5 || b[2] != ':' {
		return dt, false
	}
	hh, ok1 := digits(b[0:2])
	mm, ok2 := digits(b[3:5])
	if !ok1 || !ok2 || hh > 23 || mm > 59 {
		return dt, false
	}
	ss, us := 0, 0
	b = b[5:]
	if len(b) >= 3 && b[0] == ':' {
		s, ok := digits(b[1:3])
		if !ok || s > 60 {
			return dt, false
		}
		ss = s
		b = b[3:]
		if len(b) > 0 && (b[0] == '.' || b[0] == ',') {
			i := 1
			scale := 100000
			for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
				us += int(b[i]-'0') * scale
				scale /= 10
			}
			if i == 1 {
				return dt, false
			}
			b = b[i:]
		}
	}
	dt.hasTime = true
	dt.micros += (int64(hh)*3600+int64(mm)*60+int64(ss))*1e6 + int64(us)
	if len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	if len(b) == 0 {
		return dt, true
	}
	switch {
	case len(b) == 1 && (b[0] == 'Z' || b[0] == 'z'):
	case string(b) == "UTC":
	case b[0] == '+' || b[0] == '-':
		var oh, om int
		var ok bool
		switch o := b[1:]; {
		case len(o) == 2:
			oh, ok = digits(o)
		case len(o) == 4:
			oh, ok = digits(o[:2])
			om, ok2 = digits(o[2:])
			ok = ok && ok2
		case len(o) == 5 && o[2] == ':':
			oh, ok = digits(o[:2])
			om, ok2 = digits(o[3:])
			ok = ok && ok2
		}
		if !ok || oh > 18 || om > 59 {
			return dt, false
		}
		off := (int64(oh)*3600 + int64(om)*60) * 1e6
		if b[0] == '+' {
			dt.micros -= off
		} else {
			dt.micros += off
		}
	default:
		return dt, false
	}
	dt.hasOffset = true
	return dt, true
}
