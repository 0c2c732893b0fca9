package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// LookupFunc finds an environment variable, like os.LookupEnv.
type LookupFunc func(key string) (string, bool)

// layered returns a lookup that prefers the real environment and falls back to the .env values,
// so a variable set by systemd or the shell always wins over the file.
func layered(base LookupFunc, dotenv map[string]string) LookupFunc {
	return func(key string) (string, bool) {
		if v, ok := base(key); ok {
			return v, true
		}
		v, ok := dotenv[key]
		return v, ok
	}
}

// readDotenv reads KEY=VALUE lines from path; a missing file is no error.
// Supported: blank lines, # comments (whole line, or after an unquoted value preceded by a space),
// an optional "export " prefix, 'single quotes' (literal), "double quotes" (with \n \t \" \\ \$
// escapes, may span lines). Nothing is expanded inside values.
func readDotenv(path, display string) (map[string]string, problems) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var probs problems
	if err != nil {
		probs.add(display, 0, "", "%v", err)
		return nil, probs
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		start := lineNo
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSpace(strings.TrimPrefix(line, "export "))
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok {
			probs.add(display, start, "", "expected KEY=VALUE, got %q", truncate(line))
			continue
		}
		if !validVarName(key) {
			probs.add(display, start, "", "%q is not a valid variable name (letters, digits and _, not starting with a digit)", key)
			continue
		}
		val = strings.TrimLeft(val, " \t")
		switch {
		case strings.HasPrefix(val, `"`):
			// A double-quoted value may continue on the following lines until its closing quote.
			for {
				v, rest, closed := unquoteDouble(val[1:])
				if closed {
					if r := strings.TrimSpace(rest); r != "" && !strings.HasPrefix(r, "#") {
						probs.add(display, start, key, "unexpected text after the closing quote: %q", truncate(r))
					}
					vars[key] = v
					break
				}
				if !sc.Scan() {
					probs.add(display, start, key, "unterminated double-quoted value")
					break
				}
				lineNo++
				val += "\n" + sc.Text()
			}
		case strings.HasPrefix(val, "'"):
			v, rest, closed := strings.Cut(val[1:], "'")
			if !closed {
				probs.add(display, start, key, "unterminated single-quoted value")
				continue
			}
			if r := strings.TrimSpace(rest); r != "" && !strings.HasPrefix(r, "#") {
				probs.add(display, start, key, "unexpected text after the closing quote: %q", truncate(r))
				continue
			}
			vars[key] = v
		default:
			if i := strings.Index(val, " #"); i >= 0 {
				val = val[:i]
			} else if i := strings.Index(val, "\t#"); i >= 0 {
				val = val[:i]
			}
			vars[key] = strings.TrimSpace(val)
		}
	}
	if err := sc.Err(); err != nil {
		probs.add(display, lineNo+1, "", "%v", err)
	}
	return vars, probs
}

// unquoteDouble reads a double-quoted body up to its closing quote. closed is false when the
// quote is not closed in s.
func unquoteDouble(s string) (val, rest string, closed bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), s[i+1:], true
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default: // \" \\ \$ and anything else: the character itself
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// expand replaces ${VAR} and ${VAR:-default} in s. "$$" is a literal "$"; a "$" not followed by
// "{" or "$" stays as it is. ${VAR:-default} uses the default when VAR is unset or empty; ${VAR}
// with VAR unset is an error (set it to an empty value to mean "empty").
func expand(s string, lookup LookupFunc) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte('$')
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated %q (missing })", truncate(s[i:]))
		}
		ref := s[i : i+end+1]
		name, def, hasDef := strings.Cut(s[i+2:i+end], ":-")
		if !validVarName(name) {
			return "", fmt.Errorf("bad variable reference %s (use ${NAME} or ${NAME:-default}; $$ is a literal $)", ref)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("%s is not set", ref)
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), nil
}
