package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseYAML parses one YAML document. lineOffset is added to every line number, so a block
// cut out of a markdown file reports the markdown file's lines. A document without content
// returns nil.
func parseYAML(file string, data []byte, lineOffset int) (*yaml.Node, *Error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
		if line == 0 || parserProblems[msg] {
			// yaml.v3 counts lines from 0 for parser (not scanner) errors and omits line 0; the
			// line is where the enclosing list or mapping starts, not the faulty line itself.
			line++
			msg += parserHint
		}
		return nil, &Error{File: file, Line: line + lineOffset, Msg: "invalid YAML: " + msg}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if lineOffset != 0 {
		shiftLines(root, lineOffset, map[*yaml.Node]bool{})
	}
	return root, nil
}

const parserHint = " (in the list or mapping starting on this line)"

// parserProblems are the messages of yaml.v3's parser errors; they point at the start of the
// collection being parsed.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'": true, "did not find expected ',' or '}'": true,
	"did not find expected '-' indicator": true, "did not find expected <document start>": true,
	"did not find expected key": true, "did not find expected node content": true,
	"found duplicate %TAG directive": true, "found duplicate %YAML directive": true,
	"found incompatible YAML document": true, "found undefined tag handle": true,
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// splitLine splits yaml.v3's "line N: message" into N and the message.
func splitLine(s string) (int, string) {
	if m := lineRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, s
}

func shiftLines(n *yaml.Node, offset int, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	n.Line += offset
	for _, c := range n.Content {
		shiftLines(c, offset, seen)
	}
	shiftLines(n.Alias, offset, seen)
}

// walkValues calls visit for every scalar value under n (not mapping keys) with its key path.
func walkValues(n *yaml.Node, path string, seen map[*yaml.Node]bool, visit func(n *yaml.Node, path string)) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkValues(n.Content[i+1], joinKey(path, n.Content[i].Value), seen, visit)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkValues(c, fmt.Sprintf("%s[%d]", path, i), seen, visit)
		}
	case yaml.AliasNode:
		walkValues(n.Alias, path, seen, visit)
	case yaml.ScalarNode:
		visit(n, path)
	}
}

// interpolate expands ${VAR} references in every scalar value under n, in place.
func interpolate(file string, n *yaml.Node, path string, lookup LookupFunc) problems {
	var probs problems
	walkValues(n, path, map[*yaml.Node]bool{}, func(s *yaml.Node, key string) {
		if !strings.Contains(s.Value, "$") {
			return
		}
		v, err := expand(s.Value, lookup)
		if err != nil {
			probs.add(file, s.Line, key, "%v", err)
			// Decode it as absent so the unexpanded text does not also fail as a wrong type.
			s.Value, s.Tag, s.Style = "", "!!null", 0
			return
		}
		s.Value = v
		if s.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && !isNullText(v) {
			// An unquoted ${PORT} resolves like a value typed in its place (8080 is a number, true a
			// bool). A null-looking value stays a string so an empty secret is "", not a missing key.
			s.Tag = ""
		}
	})
	return probs
}

func isNullText(s string) bool {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return true
	}
	return false
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeStrict decodes n into v (a pointer), reporting keys that v's type does not have (with a
// suggestion) and type mismatches, each with file, line and key path.
func decodeStrict(file string, n *yaml.Node, v any, path string) problems {
	var probs problems
	checkKeys(file, n, reflect.TypeOf(v), path, &probs, map[*yaml.Node]bool{})
	if err := n.Decode(v); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			probs.add(file, n.Line, path, "%v", err)
			return probs
		}
		scalars, collections := linePaths(n, path)
		for _, msg := range te.Errors {
			line, m := splitLine(msg)
			key, ok := scalars[line]
			if strings.Contains(m, "unmarshal !!map") || strings.Contains(m, "unmarshal !!seq") || !ok {
				if k, ok := collections[line]; ok {
					key = k
				}
			}
			probs.add(file, line, key, "%s", m)
		}
	}
	return probs
}

// linePaths maps a line to the key path of the first scalar value on it and, separately, of the
// first mapping or sequence starting on it, to name the key in yaml.v3's type errors, which only
// carry a line.
func linePaths(n *yaml.Node, path string) (scalars, collections map[int]string) {
	scalars, collections = map[int]string{}, map[int]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		m := collections
		if n.Kind == yaml.ScalarNode {
			m = scalars
		}
		if _, ok := m[n.Line]; !ok {
			m[n.Line] = path
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], joinKey(path, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(n, path)
	return scalars, collections
}

var (
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	nodeType        = reflect.TypeOf(yaml.Node{})
)

// checkKeys walks n alongside Go type t and reports mapping keys that t has no field for.
// Kind mismatches are left to Decode, which reports them.
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string, probs *problems, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Kind == yaml.AliasNode {
		checkKeys(file, n.Alias, t, path, probs, seen)
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return // decoded by custom code that validates itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields, names := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // YAML merge key: the merged mapping must fit t too
				if v.Kind == yaml.SequenceNode {
					for _, c := range v.Content {
						checkKeys(file, c, t, path, probs, seen)
					}
				} else {
					checkKeys(file, v, t, path, probs, seen)
				}
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				probs.add(file, k.Line, joinKey(path, k.Value), "%s", unknownKey(k.Value, names))
				continue
			}
			checkKeys(file, v, ft, joinKey(path, k.Value), probs, seen)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(file, n.Content[i+1], t.Elem(), joinKey(path, n.Content[i].Value), probs, seen)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkKeys(file, c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs, seen)
		}
	}
}

// yamlFields lists the keys yaml.v3 decodes into struct type t, with their types.
func yamlFields(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			sub, subNames := yamlFields(f.Type)
			for _, n := range subNames {
				fields[n] = sub[n]
			}
			names = append(names, subNames...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	return fields, names
}
