package config

import (
	"testing"
)

func loadInstance(t *testing.T, inst string, env map[string]string) error {
	t.Helper()
	home := writeHome(t, map[string]string{"config/instance.yaml": inst, "docs/data_description.md": minimalCatalogue})
	_, err := load(home, env)
	return err
}

func TestInstanceErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"missing name", "server: {host: a}\n",
			[]string{"config/instance.yaml:1: instance.name: required"}},
		{"empty name in block", "instance:\n  subtitle: x\n",
			[]string{"config/instance.yaml:1: instance.name: required"}},
		{"empty file", "# nothing yet\n",
			[]string{"config/instance.yaml: instance.name: required (the file is empty)"}},
		{"not a mapping", "- a\n- b\n",
			[]string{"config/instance.yaml:1: the top level must be a mapping of blocks (instance:, server:, ...)"}},
		{"unknown block with suggestion", "instance: {name: x}\npipline:\n  backend: nats\n",
			[]string{`config/instance.yaml:2: pipline: unknown key (did you mean "pipeline"?)`}},
		{"unknown block without suggestion", "instance: {name: x}\nzzzzzz: 1\n",
			[]string{`config/instance.yaml:2: zzzzzz: unknown key (known keys: access, ai, auth, catalog, data_source, datasets, desktop, email, instance, jira, pipeline, server, telegram)`}},
		{"unknown nested key", "instance:\n  name: x\nauth:\n  google_client_secrt: s\n",
			[]string{`config/instance.yaml:4: auth.google_client_secrt: unknown key (did you mean "google_client_secret"?)`}},
		{"transposed letters", "instance:\n  nmae: x\n",
			[]string{`config/instance.yaml:2: instance.nmae: unknown key (did you mean "name"?)`}},
		{"unknown key in a map value", "instance: {name: x}\ndatasets:\n  jira:\n    lable: Jira\n",
			[]string{`config/instance.yaml:4: datasets.jira.lable: unknown key (did you mean "label"?)`}},
		{"unknown key in catalog category", "instance: {name: x}\ncatalog:\n  categories:\n    shop: {label: Shop, icno: cart}\n",
			[]string{`config/instance.yaml:4: catalog.categories.shop.icno: unknown key (did you mean "icon"?)`}},
		{"wrong type", "instance: {name: x}\njira:\n  allow_unsigned: maybe\n",
			[]string{"config/instance.yaml:3: jira.allow_unsigned: cannot unmarshal !!str `maybe` into bool"}},
		{"concurrency out of range", "instance: {name: x}\npipeline:\n  backend: nats\n  concurrency: 1000\n",
			[]string{"config/instance.yaml:4: pipeline.concurrency: must be between 1 and 256, not 1000"}},
		{"block is not a mapping", "instance: {name: x}\nserver: [a, b]\n",
			[]string{"config/instance.yaml:2: server: cannot unmarshal !!seq into config.Server"}},
		{"list expected", "instance: {name: x}\naccess:\n  private_folders: finance\n",
			[]string{"config/instance.yaml:3: access.private_folders: cannot unmarshal !!str `finance` into []string"}},
		{"duplicate block", "instance: {name: x}\nserver: {host: a}\nserver: {host: b}\n",
			[]string{"config/instance.yaml:3: server: block defined twice (first at line 2)"}},
		{"duplicate key", "instance:\n  name: x\n  name: y\n",
			[]string{`config/instance.yaml:3: instance.name: mapping key "name" already defined at line 2`}},
		{"bad backend", "instance: {name: x}\npipeline:\n  backend: natz\n",
			[]string{`config/instance.yaml:3: pipeline.backend: "natz" is not one of bolt, nats (did you mean "nats"?)`}},
		{"several connectors and no type", "instance: {name: x}\ndata_source:\n  csv: {path: a}\n  bigquery: {project: p}\n",
			[]string{"config/instance.yaml:2: data_source.type: required when several connectors are configured (one of bigquery, csv)"}},
		{"connector block not a mapping", "instance: {name: x}\ndata_source:\n  csv: ./data\n",
			[]string{"config/instance.yaml:3: data_source.csv: must be a mapping of the csv connector's settings"}},
		{"duplicate connector block", "instance: {name: x}\ndata_source:\n  csv: {path: a}\n  csv: {path: b}\n",
			[]string{"config/instance.yaml:4: data_source.csv: block defined twice (first at line 3)"}},
		{"dataset requires unknown", "instance: {name: x}\ndatasets:\n  jira: {label: J}\n  sla:\n    requires: [jiar]\n",
			[]string{`config/instance.yaml:5: datasets.sla.requires: "jiar" is not one of jira, sla (did you mean "jira"?)`}},
		{"syntax error", "instance:\n  name: x\n   bad: indent\n",
			[]string{"config/instance.yaml:3: invalid YAML: mapping values are not allowed in this context"}},
		{"unquoted reference in a flow list", "instance: {name: x}\nauth: {allowed_domains: [${D}]}\n",
			[]string{`config/instance.yaml:2: invalid YAML: did not find expected ',' or ']' (inside [ ] or { }, quote references: "${VAR}")`}},
		{"all problems at once", "instance:\n  subtitle: x\nauth:\n  webapp_secret_key: ${NOPE}\njira:\n  allow_unsigned: ${UNSIGNED}\npipeline: {backend: kafka}\n",
			[]string{
				"config/instance.yaml:1: instance.name: required",
				"config/instance.yaml:4: auth.webapp_secret_key: ${NOPE} is not set",
				"config/instance.yaml:6: jira.allow_unsigned: ${UNSIGNED} is not set",
				`config/instance.yaml:7: pipeline.backend: "kafka" is not one of bolt, nats`,
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertErrors(t, loadInstance(t, c.yaml, nil), c.want...)
		})
	}
}

func TestInstanceDefaults(t *testing.T) {
	cases := []struct {
		yaml, wantType string
		wantSources    []string
	}{
		{minimalInstance, "keboola", []string{"keboola"}},
		{minimalInstance + "data_source:\n  csv: {path: data/csv}\n", "csv", []string{"csv"}},
		{minimalInstance + "data_source:\n  type: bigquery\n", "bigquery", []string{"bigquery"}},
		{minimalInstance + "data_source:\n  type: csv\n  keboola: {stack_url: x}\n  csv:\n", "csv", []string{"csv", "keboola"}},
	}
	for _, c := range cases {
		home := writeHome(t, map[string]string{"config/instance.yaml": c.yaml, "docs/data_description.md": minimalCatalogue})
		cfg := mustLoad(t, home, nil)
		if cfg.Instance.DataSource.Type != c.wantType || !equal(cfg.Sources(), c.wantSources) {
			t.Errorf("%q: type %q sources %v; want %q %v", c.yaml, cfg.Instance.DataSource.Type, cfg.Sources(), c.wantType, c.wantSources)
		}
		if got := cfg.Catalogue.Tables[0].Source; got != c.wantType {
			t.Errorf("%q: table source %q, want the default %q", c.yaml, got, c.wantType)
		}
	}
	home := writeHome(t, map[string]string{
		"config/instance.yaml":     minimalInstance + "jira:\n  domain: acme.atlassian.net\n  base_url: https://proxy.local/jira/\n  sla_base_url: http://127.0.0.1:9/\npipeline: {backend: nats, nats_url: nats://127.0.0.1:4222, concurrency: 12}\ncatalog:\n  categories: {b: {label: B}, a: {label: A}}\n  order: [a]\n",
		"docs/data_description.md": minimalCatalogue,
	})
	cfg := mustLoad(t, home, nil)
	j := cfg.Instance.Jira
	if j.BaseURL != "https://proxy.local/jira" || j.SLABaseURL != "http://127.0.0.1:9" {
		t.Errorf("jira urls %q %q", j.BaseURL, j.SLABaseURL)
	}
	if cfg.Instance.Pipeline.Backend != BackendNATS || cfg.Instance.Pipeline.NATSURL != "nats://127.0.0.1:4222" || cfg.Instance.Pipeline.Concurrency != 12 {
		t.Errorf("pipeline %+v", cfg.Instance.Pipeline)
	}
	if !equal(cfg.Instance.Catalog.Order, []string{"a"}) {
		t.Errorf("explicit catalog.order replaced: %v", cfg.Instance.Catalog.Order)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
