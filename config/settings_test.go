package config_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors"
)

// probeSettings is what a connector might decode its block into.
type probeSettings struct {
	URL     string        `yaml:"url"`
	Token   string        `yaml:"token"`
	Timeout time.Duration `yaml:"timeout"`
	Retries int           `yaml:"retries"`
	Tables  []string      `yaml:"tables"`
	Auth    struct {
		User string `yaml:"user"`
	} `yaml:"auth"`
}

type probe struct{ s probeSettings }

func (p *probe) Extract(context.Context, connectors.ExtractRequest) (*connectors.Extraction, error) {
	return nil, nil
}
func (p *probe) Check(context.Context) error { return nil }

func init() {
	connectors.Register("config-probe", func(s connectors.Settings) (connectors.Connector, error) {
		p := &probe{s: probeSettings{Retries: 3}}
		if err := s.Decode(&p.s); err != nil {
			return nil, err
		}
		return p, nil
	})
}

func home(t *testing.T, instance string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"config/instance.yaml":     instance,
		"docs/data_description.md": "```yaml\ntables: []\n```\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadWith(t *testing.T, dir string, env map[string]string) *config.Config {
	t.Helper()
	c, err := config.LoadWith(dir, config.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConnectorSettingsThroughRegistry(t *testing.T) {
	dir := home(t, `instance: {name: T}
data_source:
  type: config-probe
  config-probe:
    url: http://127.0.0.1:1/api
    token: ${PROBE_TOKEN}
    timeout: 90s
    tables:
      - a
      - ${SECOND_TABLE:-b}
    auth:
      user: bot
`)
	c := loadWith(t, dir, map[string]string{"PROBE_TOKEN": "t0k"})
	var s connectors.Settings = c.ConnectorSettings("config-probe") // the concrete type satisfies the interface
	abs, _ := filepath.Abs(dir)
	if s.Dir() != abs {
		t.Errorf("Dir() = %q, want %q", s.Dir(), abs)
	}
	conn, err := connectors.Open("config-probe", s)
	if err != nil {
		t.Fatal(err)
	}
	got := conn.(*probe).s
	if got.URL != "http://127.0.0.1:1/api" || got.Token != "t0k" || got.Timeout != 90*time.Second || got.Retries != 3 ||
		strings.Join(got.Tables, ",") != "a,b" || got.Auth.User != "bot" {
		t.Errorf("decoded %+v", got)
	}
	if got := c.Sources(); strings.Join(got, ",") != "config-probe" {
		t.Errorf("Sources() = %v", got)
	}
}

func TestConnectorSettingsStrict(t *testing.T) {
	dir := home(t, `instance: {name: T}
data_source:
  type: config-probe
  config-probe:
    url: http://x
    tokn: abc
    retries: many
    auth:
      usr: bot
`)
	c := loadWith(t, dir, nil)
	_, err := connectors.Open("config-probe", c.ConnectorSettings("config-probe"))
	want := strings.Join([]string{
		`config/instance.yaml:6: data_source.config-probe.tokn: unknown key (did you mean "token"?)`,
		"config/instance.yaml:7: data_source.config-probe.retries: cannot unmarshal !!str `many` into int",
		`config/instance.yaml:9: data_source.config-probe.auth.usr: unknown key (did you mean "user"?)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestConnectorSettingsWithoutBlock(t *testing.T) {
	c := loadWith(t, home(t, "instance: {name: T}\ndata_source:\n  type: config-probe\n"), nil)
	conn, err := connectors.Open("config-probe", c.ConnectorSettings("config-probe"))
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.(*probe).s; got.Retries != 3 || got.URL != "" {
		t.Errorf("defaults changed: %+v", got)
	}
}
