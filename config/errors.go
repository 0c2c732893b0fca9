package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error is one configuration problem, located in its file.
type Error struct {
	File  string // relative to the instance folder when inside it
	Line  int    // 1-based; 0 when the problem concerns the whole file
	Table string // the catalogue table concerned, if any
	Key   string // dotted key path, e.g. auth.google_client_secret or where_filters[0].values[1]
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Table != "" {
		fmt.Fprintf(&b, "table %q: ", e.Table)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// problems collects every error of a load so the user can fix them all in one go.
type problems []*Error

func (p *problems) add(file string, line int, key, format string, args ...any) {
	*p = append(*p, &Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// err returns the problems sorted by file and line, joined, or nil.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	sort.SliceStable(p, func(i, j int) bool {
		if p[i].File != p[j].File {
			return p[i].File < p[j].File
		}
		return p[i].Line < p[j].Line
	})
	errs := make([]error, len(p))
	for i, e := range p {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// unknownKey describes a key that is not one of known, suggesting the closest.
func unknownKey(key string, known []string) string {
	if s := suggest(key, known); s != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", s)
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	return fmt.Sprintf("unknown key (known keys: %s)", strings.Join(sorted, ", "))
}

// notOneOf describes a value outside an enumeration, suggesting the closest.
func notOneOf(value string, allowed []string) string {
	msg := fmt.Sprintf("%q is not one of %s", value, strings.Join(allowed, ", "))
	if s := suggest(value, allowed); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// suggest returns the candidate closest to word (case-insensitive) when it is a plausible typo:
// within a small Damerau-Levenshtein distance, or else a candidate that contains word or is
// contained in it ("INT" -> "INTEGER" rather than "BIGINT", "granularity" -> "partition_granularity"). "" if none.
func suggest(word string, candidates []string) string {
	w := strings.ToLower(word)
	limit := 1 + len(w)/5
	best, bestD := "", limit+1
	for _, c := range candidates {
		if d := distance(w, strings.ToLower(c)); d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if bestD <= limit {
		return best
	}
	if len(w) < 3 {
		return ""
	}
	// A candidate starting with word beats one merely containing it; then the shorter wins.
	best, bestScore := "", 0
	for _, c := range candidates {
		lc := strings.ToLower(c)
		score := 0
		switch {
		case strings.HasPrefix(lc, w):
			score = 1 << 20
		case strings.Contains(lc, w) || strings.Contains(w, lc):
			score = 1 << 10
		default:
			continue
		}
		score -= len(c)
		if score > bestScore {
			best, bestScore = c, score
		}
	}
	return best
}

// distance is the optimal-string-alignment Damerau-Levenshtein distance: insertions, deletions,
// substitutions and transpositions of adjacent characters each cost 1.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
