package store

// Type inference: a column whose type is not declared gets the narrowest of BOOLEAN, INTEGER,
// NUMERIC, DATE, TIMESTAMP and TIMESTAMP_TZ that every non-empty value parses as, else STRING.
// The checks here are stricter than the conversion parsers on purpose: an inferred type must
// never lose data, so "007" (leading zero), "0"/"1" flags (could be counts), numbers with more
// digits than a float64 keeps, and dates in doubtful formats all stay strings.

const (
	canBool = 1 << iota
	canInt
	canFloat
	canDate
	canTimestamp
	canTimestampTZ
	canAny = canBool | canInt | canFloat | canDate | canTimestamp | canTimestampTZ
)

// inferColumn narrows the candidate types of one column as values are observed.
type inferColumn struct {
	can      uint8
	nonEmpty bool
}

func newInferColumn() inferColumn { return inferColumn{can: canAny} }

func (c *inferColumn) observe(v []byte) {
	if len(v) == 0 {
		return
	}
	c.nonEmpty = true
	can := c.can
	if can&canBool != 0 && !isBoolWord(v) {
		can &^= canBool
	}
	if can&(canInt|canFloat) != 0 {
		isInt, isFloat := classifyNumber(v)
		if !isInt {
			can &^= canInt
		}
		if !isFloat {
			can &^= canFloat
		}
	}
	if can&(canDate|canTimestamp|canTimestampTZ) != 0 {
		dt, ok := parseDateTime(v)
		if !ok || len(trimSpace(v)) != len(v) {
			can &^= canDate | canTimestamp | canTimestampTZ
		} else {
			if dt.hasTime || dt.hasOffset {
				can &^= canDate
			}
			if dt.hasOffset {
				can &^= canTimestamp
			}
		}
	}
	c.can = can
}

// result picks the narrowest remaining candidate.
func (c *inferColumn) result() colType {
	if !c.nonEmpty {
		return colType{kind: kString}
	}
	for _, k := range []struct {
		bit  uint8
		kind kind
	}{{canBool, kBool}, {canInt, kInt}, {canFloat, kFloat}, {canDate, kDate}, {canTimestamp, kTimestamp}, {canTimestampTZ, kTimestampTZ}} {
		if c.can&k.bit != 0 {
			return colType{kind: k.kind}
		}
	}
	return colType{kind: kString}
}

// isBoolWord accepts true/false, yes/no and t/f in any case (not 0/1: those are integers).
func isBoolWord(v []byte) bool {
	if len(v) == 1 && (v[0] == '0' || v[0] == '1') {
		return false
	}
	_, ok := parseBool(v)
	return ok && len(trimSpace(v)) == len(v)
}

// classifyNumber reports whether v is a canonical integer (fits int64, no leading zeros or '+')
// and whether it is a number a float64 holds exactly as written (at most 15 significant digits).
func classifyNumber(v []byte) (isInt, isFloat bool) {
	i := 0
	if v[0] == '-' {
		i = 1
	}
	start := i
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	intDigits := i - start
	if intDigits == 0 || (intDigits > 1 && v[start] == '0') {
		return false, false
	}
	if i == len(v) {
		if intDigits <= 18 {
			return true, intDigits <= 15
		}
		_, ok := parseInt(v)
		return ok, false
	}
	sig := intDigits
	if v[start] == '0' {
		sig = 0
	}
	if v[i] == '.' {
		i++
		f := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			if sig > 0 || v[i] != '0' {
				sig++
			}
			i++
		}
		if i == f {
			return false, false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '-' || v[i] == '+') {
			i++
		}
		e := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == e || i-e > 3 {
			return false, false
		}
	}
	return false, i == len(v) && sig <= 15
}
