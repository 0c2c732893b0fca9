package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"A": "alpha", "EMPTY": "", "D": "$HOME ${NOT}"})
	ok := map[string]string{
		"plain":                "plain",
		"${A}":                 "alpha",
		"x-${A}-${A}":          "x-alpha-alpha",
		"${UNSET:-fallback}":   "fallback",
		"${EMPTY:-fallback}":   "fallback",
		"${A:-fallback}":       "alpha",
		"${UNSET:-}":           "",
		"${EMPTY}":             "",
		"${D}":                 "$HOME ${NOT}", // substituted values are not expanded again
		"cost $5":              "cost $5",
		"pa$$word":             "pa$word",
		"$${A}":                "${A}",
		"end$":                 "end$",
		"${UNSET:-a:-b}":       "a:-b",
		"${UNSET:-with space}": "with space",
	}
	for in, want := range ok {
		got, err := expand(in, env)
		if err != nil || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"${UNSET}":     "${UNSET} is not set",
		"x ${A":        `unterminated "${A" (missing })`,
		"${}":          "bad variable reference ${}",
		"${1A}":        "bad variable reference ${1A}",
		"${A B}":       "bad variable reference ${A B}",
		"${A:-x} ${B}": "${B} is not set",
	}
	for in, want := range bad {
		_, err := expand(in, env)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("expand(%q) error = %v; want %q", in, err, want)
		}
	}
}

func TestDotenv(t *testing.T) {
	content := `# secrets
export TOKEN=abc123
PLAIN = value with spaces   # trailing comment
HASH=a#b
DOUBLE="line1\nline2 \"quoted\" \\ \$"
MULTI="-----BEGIN KEY-----
abc
-----END KEY-----"
EMPTY=
EQUALS=a=b=c

  INDENTED=yes
`
	home := writeHome(t, map[string]string{".env": content})
	vars, probs := readDotenv(filepath.Join(home, ".env"), ".env")
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs.err())
	}
	want := map[string]string{
		"TOKEN": "abc123", "PLAIN": "value with spaces", "HASH": "a#b",
		"DOUBLE": "line1\nline2 \"quoted\" \\ $", "MULTI": "-----BEGIN KEY-----\nabc\n-----END KEY-----",
		"EMPTY": "", "EQUALS": "a=b=c", "INDENTED": "yes",
	}
	if !reflect.DeepEqual(vars, want) {
		t.Errorf("vars:\n got  %q\n want %q", vars, want)
	}
}

func TestDotenvSingleQuotes(t *testing.T) {
	home := writeHome(t, map[string]string{".env": "S='$NOT ${EXPANDED} # kept' # comment\n"})
	vars, probs := readDotenv(filepath.Join(home, ".env"), ".env")
	if len(probs) > 0 || vars["S"] != "$NOT ${EXPANDED} # kept" {
		t.Fatalf("S = %q, problems %v", vars["S"], probs.err())
	}
}

func TestDotenvErrors(t *testing.T) {
	content := "OK=1\nno equals here\n1BAD=x\nQ=\"open\nstill open\n"
	home := writeHome(t, map[string]string{".env": content, "config/instance.yaml": minimalInstance, "docs/data_description.md": minimalCatalogue})
	_, err := load(home, nil)
	assertErrors(t, err,
		`.env:2: expected KEY=VALUE, got "no equals here"`,
		`.env:3: "1BAD" is not a valid variable name (letters, digits and _, not starting with a digit)`,
		`.env:4: Q: unterminated double-quoted value`,
	)
	home = writeHome(t, map[string]string{".env": "A='x\nB='y' z\n"})
	_, probs := readDotenv(filepath.Join(home, ".env"), ".env")
	assertErrors(t, probs.err(),
		`.env:1: A: unterminated single-quoted value`,
		`.env:2: B: unexpected text after the closing quote: "z"`,
	)
}

func TestMissingDotenvIsFine(t *testing.T) {
	vars, probs := readDotenv(filepath.Join(t.TempDir(), ".env"), ".env")
	if vars != nil || probs != nil {
		t.Fatalf("vars %v, problems %v", vars, probs)
	}
}

func TestInterpolationInInstance(t *testing.T) {
	inst := `instance:
  name: Test
auth:
  allowed_domains:
    - example.com
    - ${SECOND_DOMAIN}
  google_client_secret: ${GOOGLE_CLIENT_SECRET}
jira:
  allow_unsigned: ${JIRA_UNSIGNED:-true}
  email: "${JIRA_EMAIL:-null}"
  custom_fields:
    points: ${POINTS_FIELD}
data_source:
  keboola:
    storage_token: ${KEBOOLA_TOKEN}
`
	home := writeHome(t, map[string]string{"config/instance.yaml": inst, "docs/data_description.md": minimalCatalogue})
	_, err := load(home, nil)
	assertErrors(t, err,
		"config/instance.yaml:6: auth.allowed_domains[1]: ${SECOND_DOMAIN} is not set",
		"config/instance.yaml:7: auth.google_client_secret: ${GOOGLE_CLIENT_SECRET} is not set",
		"config/instance.yaml:12: jira.custom_fields.points: ${POINTS_FIELD} is not set",
		"config/instance.yaml:15: data_source.keboola.storage_token: ${KEBOOLA_TOKEN} is not set",
	)

	env := map[string]string{"SECOND_DOMAIN": "b.com", "GOOGLE_CLIENT_SECRET": "s3cret", "POINTS_FIELD": "customfield_1", "KEBOOLA_TOKEN": "tok"}
	c := mustLoad(t, home, env)
	if !reflect.DeepEqual(c.Instance.Auth.AllowedDomains, []string{"example.com", "b.com"}) || c.Instance.Auth.GoogleClientSecret != "s3cret" {
		t.Errorf("auth = %+v", c.Instance.Auth)
	}
	// An unquoted reference takes the type of its value; a quoted one stays a string.
	if !c.Instance.Jira.AllowUnsigned || c.Instance.Jira.Email != "null" {
		t.Errorf("jira = %+v", c.Instance.Jira)
	}
	var kb struct {
		StorageToken string `yaml:"storage_token"`
	}
	if err := c.ConnectorSettings("keboola").Decode(&kb); err != nil || kb.StorageToken != "tok" {
		t.Errorf("keboola settings = %+v, %v", kb, err)
	}
}

func TestInterpolatedTypes(t *testing.T) {
	inst := "instance: {name: T}\njira:\n  allow_unsigned: \"${UNSIGNED}\"\n  email: ${EMAIL}\n"
	home := writeHome(t, map[string]string{"config/instance.yaml": inst, "docs/data_description.md": minimalCatalogue})
	// A quoted reference is a string, so it cannot fill a bool; an empty value stays an empty string.
	_, err := load(home, map[string]string{"UNSIGNED": "true", "EMAIL": ""})
	assertErrors(t, err, "config/instance.yaml:3: jira.allow_unsigned: cannot unmarshal !!str `true` into bool")
	c := mustLoad(t, writeHome(t, map[string]string{"config/instance.yaml": "instance: {name: T}\njira:\n  email: ${EMAIL}\n", "docs/data_description.md": minimalCatalogue}),
		map[string]string{"EMAIL": "~"})
	if c.Instance.Jira.Email != "~" {
		t.Errorf("email = %q, want the literal value", c.Instance.Jira.Email)
	}
}
