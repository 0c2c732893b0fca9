package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const exampleInstance = `# Example instance
instance:
  name: ${COMPANY:-Acme} Data
  subtitle: "Analytics for ${TEAM}"
  public_url: https://data.example.com
server:
  hostname: data
  host: data.example.com
auth:
  allowed_domain: Example.com
  allowed_domains: [example.com, "${EXTRA_DOMAIN}"]
  google_client_id: ${GOOGLE_CLIENT_ID}
  google_client_secret: ${GOOGLE_CLIENT_SECRET}
  webapp_secret_key: "${WEBAPP_SECRET_KEY}"
data_source:
  type: keboola
  keboola:
    stack_url: https://connection.keboola.com
    storage_token: ${KEBOOLA_STORAGE_TOKEN}
    project_id: 1234
  csv:
    path: data/csv
    watch: ${CSV_WATCH:-true}
jira:
  domain: example.atlassian.net
  webhook_secret: ${JIRA_WEBHOOK_SECRET:-}
  allow_unsigned: false
  custom_fields: {story_points: customfield_10016}
access:
  private_folders: [finance]
datasets:
  jira: {label: Jira, description: Support tickets, size_hint: 2 GB}
  jira_sla: {label: Jira SLA, requires: [jira]}
catalog:
  categories:
    shop: {label: Shop, icon: cart}
    finance: {label: Finance, icon: lock}
    crm: {label: CRM}
ai:
  provider: anthropic
  api_key: ${ANTHROPIC_API_KEY:-}
`

const exampleCatalogue = "# Data\n\nSome prose.\n\n```yaml\n" + `folder_mapping:
  in.c-shop: shop
  in.c-finance: finance
tables:
  - id: in.c-shop.products
    name: products
    description: Product catalogue
    primary_key: sku
    sync_strategy: full_refresh
    schedule: every 6h
  - id: in.c-shop.order_lines
    name: order_lines
    primary_key: "order_id, line_no"
    sync_strategy: incremental
    partition_by: ordered_at
    foreign_keys:
      - {column: sku, references: products.sku}
    where_filters:
      - {column: status, operator: ne, values: [cancelled]}
      - column: ordered_at
        operator: ge
        values: ["{{last_2_years}}", "{{ today }}x"]
  - id: in.c-finance.invoices
    name: invoices
    primary_key: [invoice_id]
    sync_strategy: partitioned
    partition_by: issued_on
  - id: sales
    name: sales
    source: csv
    primary_key: id
    sync_strategy: full_refresh
    private: true
    columns:
      - {name: id, type: bigint}
      - {name: amount, type: "decimal( 12, 2 )"}
      - {name: note, type: varchar}
    csv: {path: sales/*.csv, delimiter: ";", encoding: cp1252}
` + "```\n"

var exampleEnv = map[string]string{
	"TEAM": "Ops", "EXTRA_DOMAIN": "example.org", "GOOGLE_CLIENT_ID": "gid",
	"GOOGLE_CLIENT_SECRET": "gsecret", "WEBAPP_SECRET_KEY": "wsk", "KEBOOLA_STORAGE_TOKEN": "kbc-token",
}

func TestLoadExample(t *testing.T) {
	home := writeHome(t, map[string]string{
		"config/instance.yaml":     exampleInstance,
		"docs/data_description.md": exampleCatalogue,
		"docs/datasets/b.md":       "```yaml\nfolder_mapping: {in.c-shop: store}\n```\n",
		"docs/datasets/a.md":       "```yml\ntables:\n  - {id: in.c-jira.issues, name: issues, primary_key: key, sync_strategy: full_refresh, dataset: jira}\n```\n",
	})
	c := mustLoad(t, home, exampleEnv)
	in := c.Instance

	if in.Instance.Name != "Acme Data" || in.Instance.Subtitle != "Analytics for Ops" {
		t.Errorf("instance = %+v", in.Instance)
	}
	if got := in.Auth.Domains(); !reflect.DeepEqual(got, []string{"example.com", "example.org"}) {
		t.Errorf("Domains() = %v", got)
	}
	if in.Auth.GoogleClientSecret != "gsecret" || in.Auth.WebappSecretKey != "wsk" {
		t.Errorf("auth = %+v", in.Auth)
	}
	if in.Pipeline.Backend != BackendBolt || in.Pipeline.Concurrency != DefaultConcurrency {
		t.Errorf("pipeline defaults = %+v", in.Pipeline)
	}
	if in.Jira.BaseURL != "https://example.atlassian.net" || in.Jira.SLABaseURL != "https://api.atlassian.com" || in.Jira.WebhookSecret != "" {
		t.Errorf("jira = %+v", in.Jira)
	}
	if in.Jira.CustomFields["story_points"] != "customfield_10016" {
		t.Errorf("custom_fields = %v", in.Jira.CustomFields)
	}
	if !reflect.DeepEqual(in.Catalog.Order, []string{"shop", "finance", "crm"}) {
		t.Errorf("catalog.order default = %v, want the file order", in.Catalog.Order)
	}
	if in.Catalog.Categories["finance"].Icon != "lock" || in.Datasets["jira_sla"].Requires[0] != "jira" {
		t.Errorf("catalog/datasets = %+v %+v", in.Catalog, in.Datasets)
	}
	if got := c.Sources(); !reflect.DeepEqual(got, []string{"csv", "keboola"}) {
		t.Errorf("Sources() = %v", got)
	}

	want := map[string]Table{
		"products": {ID: "in.c-shop.products", Name: "products", Description: "Product catalogue", PrimaryKey: []string{"sku"},
			SyncStrategy: FullRefresh, Folder: "store", InitialLoadChunkDays: 30, Source: "keboola", Schedule: "every 6h"},
		"order_lines": {ID: "in.c-shop.order_lines", Name: "order_lines", PrimaryKey: []string{"order_id", "line_no"},
			SyncStrategy: Incremental, IncrementalWindowDays: 7, PartitionBy: "ordered_at", PartitionGranularity: Month,
			ForeignKeys: []ForeignKey{{Column: "sku", References: "products.sku"}},
			WhereFilters: []WhereFilter{{Column: "status", Operator: "ne", Values: []string{"cancelled"}},
				{Column: "ordered_at", Operator: "ge", Values: []string{"2023-03-11", "2025-03-10x"}}},
			Folder: "store", InitialLoadChunkDays: 30, Source: "keboola"},
		"invoices": {ID: "in.c-finance.invoices", Name: "invoices", PrimaryKey: []string{"invoice_id"}, SyncStrategy: Partitioned,
			PartitionBy: "issued_on", PartitionGranularity: Month, Folder: "finance", InitialLoadChunkDays: 30, Source: "keboola", Private: true},
		"sales": {ID: "sales", Name: "sales", PrimaryKey: []string{"id"}, SyncStrategy: FullRefresh, Folder: "sales", InitialLoadChunkDays: 30,
			Source: "csv", Private: true,
			Columns: []Column{{Name: "id", Type: "INTEGER"}, {Name: "amount", Type: "DECIMAL(12,2)"}, {Name: "note", Type: "STRING"}},
			CSV:     &CSVTable{Path: "sales/*.csv", Delimiter: ";", Quote: `"`, Header: ptr(true), Encoding: "windows-1252"}},
		"issues": {ID: "in.c-jira.issues", Name: "issues", PrimaryKey: []string{"key"}, SyncStrategy: FullRefresh, Folder: "in.c-jira",
			InitialLoadChunkDays: 30, Source: "keboola", Dataset: "jira"},
	}
	var names []string
	for _, tb := range c.Catalogue.Tables {
		names = append(names, tb.Name)
		w, ok := want[tb.Name]
		if !ok {
			t.Errorf("unexpected table %q", tb.Name)
			continue
		}
		w.File, w.Line = tb.File, tb.Line
		if !reflect.DeepEqual(tb, w) {
			t.Errorf("table %s:\n got  %+v\n want %+v", tb.Name, tb, w)
		}
	}
	// The main file first, then docs/datasets/*.md in name order.
	if !reflect.DeepEqual(names, []string{"products", "order_lines", "invoices", "sales", "issues"}) {
		t.Errorf("table order = %v", names)
	}
	if tb, _ := c.Catalogue.Table("invoices"); tb.File != "docs/data_description.md" || tb.Line != lineOf(t, exampleCatalogue, "in.c-finance.invoices") {
		t.Errorf("invoices defined at %s:%d", tb.File, tb.Line)
	}
	if tb, ok := c.Catalogue.Table("in.c-shop.order_lines"); !ok || tb.Name != "order_lines" {
		t.Errorf("lookup by id = %v %v", tb.Name, ok)
	}
	if _, ok := c.Catalogue.Table("nope"); ok {
		t.Error("lookup of a missing table succeeded")
	}

	// Paths default to the instance folder's layout.
	abs, _ := filepath.Abs(home)
	wantPaths := Paths{Home: abs, ConfigDir: filepath.Join(abs, "config"), DocsDir: filepath.Join(abs, "docs"),
		DataDir: filepath.Join(abs, "data"), Parquet: filepath.Join(abs, "data", "parquet"), Metadata: filepath.Join(abs, "data", "metadata"),
		Staging: filepath.Join(abs, "data", "staging"), Raw: filepath.Join(abs, "data", "raw"), Store: filepath.Join(abs, "data", "analyst.db")}
	if c.Paths != wantPaths {
		t.Errorf("Paths = %+v", c.Paths)
	}
}

func ptr[T any](v T) *T { return &v }

func TestNoInstance(t *testing.T) {
	home := writeHome(t, map[string]string{"docs/data_description.md": minimalCatalogue})
	_, err := load(home, nil)
	if !errors.Is(err, ErrNoInstance) {
		t.Fatalf("err = %v, want ErrNoInstance", err)
	}
	if err.Error() != "no instance configuration: config/instance.yaml does not exist" {
		t.Errorf("message = %q", err)
	}
}

func TestPrivacy(t *testing.T) {
	cat := "```yaml\nfolder_mapping: {in.c-hr: people}\ntables:\n" +
		"  - {id: in.c-hr.salaries, name: salaries, primary_key: id, sync_strategy: full_refresh}\n" +
		"  - {id: in.c-hr.teams, name: teams, folder: public, primary_key: id, sync_strategy: full_refresh}\n" +
		"  - {id: in.c-web.visits, name: visits, primary_key: id, sync_strategy: full_refresh, private: true}\n" +
		"  - {id: in.c-web.pages, name: pages, primary_key: id, sync_strategy: full_refresh}\n```\n"
	home := writeHome(t, map[string]string{
		"config/instance.yaml":     minimalInstance + "access:\n  private_folders: [people]\n",
		"docs/data_description.md": cat,
	})
	c := mustLoad(t, home, nil)
	for name, want := range map[string]bool{"salaries": true, "teams": false, "visits": true, "pages": false} {
		tb, _ := c.Catalogue.Table(name)
		if tb.Private != want || c.IsPrivate(tb) != want {
			t.Errorf("%s: Private=%v IsPrivate=%v, want %v", name, tb.Private, c.IsPrivate(tb), want)
		}
	}
	// Tables made elsewhere (Jira) are judged by folder too.
	if !c.IsPrivate(Table{Name: "x", Folder: "people"}) || c.IsPrivate(Table{Name: "x", Folder: "jira"}) {
		t.Error("IsPrivate by folder is wrong for a table outside the catalogue")
	}
}

func TestEnvDirs(t *testing.T) {
	t.Run("relative CONFIG_DIR and DATA_DIR from .env", func(t *testing.T) {
		home := writeHome(t, map[string]string{
			".env":                     "CONFIG_DIR=etc\nDATA_DIR=/srv/analyst-data\n",
			"etc/instance.yaml":        "instance: {name: From etc}\n",
			"etc/data_description.md":  minimalCatalogue,
			"docs/data_description.md": "```yaml\ntables:\n  - {id: wrong, name: wrong, primary_key: id, sync_strategy: full_refresh}\n```\n",
			"docs/datasets/extra.md":   "```yaml\ntables:\n  - {id: in.c-b.u, name: u, primary_key: id, sync_strategy: full_refresh}\n```\n",
			"config/instance.yaml":     "instance: {name: From config}\n",
		})
		c := mustLoad(t, home, nil)
		abs, _ := filepath.Abs(home)
		if c.Instance.Instance.Name != "From etc" || c.Paths.ConfigDir != filepath.Join(abs, "etc") {
			t.Errorf("config dir = %s, name %q", c.Paths.ConfigDir, c.Instance.Instance.Name)
		}
		if c.Paths.DataDir != "/srv/analyst-data" || c.Paths.Store != "/srv/analyst-data/analyst.db" || c.Paths.Parquet != "/srv/analyst-data/parquet" {
			t.Errorf("data paths = %+v", c.Paths)
		}
		// $CONFIG_DIR/data_description.md replaces docs/data_description.md; docs/datasets still count.
		var names []string
		for _, tb := range c.Catalogue.Tables {
			names = append(names, tb.Name+"@"+tb.File)
		}
		if !reflect.DeepEqual(names, []string{"t@etc/data_description.md", "u@docs/datasets/extra.md"}) {
			t.Errorf("tables = %v", names)
		}
	})
	t.Run("CONFIG_DIR without data_description.md falls back to docs", func(t *testing.T) {
		home := writeHome(t, map[string]string{
			"etc/instance.yaml":        minimalInstance,
			"docs/data_description.md": minimalCatalogue,
		})
		c := mustLoad(t, home, map[string]string{"CONFIG_DIR": "etc", "DATA_DIR": "var"})
		abs, _ := filepath.Abs(home)
		if c.Paths.DataDir != filepath.Join(abs, "var") || c.Catalogue.Tables[0].File != "docs/data_description.md" {
			t.Errorf("DataDir %s, table file %s", c.Paths.DataDir, c.Catalogue.Tables[0].File)
		}
	})
	t.Run("the real environment beats .env", func(t *testing.T) {
		home := writeHome(t, map[string]string{
			".env":                     "CONFIG_DIR=nowhere\nNAME=from-dotenv\nOTHER=dotenv-only\n",
			"config/instance.yaml":     "instance: {name: \"${NAME}\", subtitle: \"${OTHER}\"}\n",
			"docs/data_description.md": minimalCatalogue,
		})
		c := mustLoad(t, home, map[string]string{"CONFIG_DIR": "config", "NAME": "from-env"})
		if c.Instance.Instance.Name != "from-env" || c.Instance.Instance.Subtitle != "dotenv-only" {
			t.Errorf("instance = %+v", c.Instance.Instance)
		}
		if v, ok := c.LookupEnv("OTHER"); !ok || v != "dotenv-only" {
			t.Errorf("LookupEnv(OTHER) = %q %v", v, ok)
		}
		if v, _ := c.LookupEnv("NAME"); v != "from-env" {
			t.Errorf("LookupEnv(NAME) = %q", v)
		}
	})
}

func TestMissingCatalogue(t *testing.T) {
	home := writeHome(t, map[string]string{"config/instance.yaml": minimalInstance})
	_, err := load(home, nil)
	assertErrors(t, err, "docs/data_description.md: the table catalogue is missing (see docs/configuration.md)")
}

func TestEmptyCatalogueIsAllowed(t *testing.T) {
	home := writeHome(t, map[string]string{
		"config/instance.yaml":     minimalInstance,
		"docs/data_description.md": "# Nothing synced yet\n\n```sql\nselect 1\n```\n",
	})
	c := mustLoad(t, home, nil)
	if len(c.Catalogue.Tables) != 0 {
		t.Fatalf("tables = %v", c.Catalogue.Tables)
	}
}

func TestErrorsAreSortedAcrossFiles(t *testing.T) {
	home := writeHome(t, map[string]string{
		".env":                     "not a line\n",
		"config/instance.yaml":     "instance: {name: x}\nserver: {hostnme: a}\n",
		"docs/data_description.md": "```yaml\ntables:\n  - {id: a.b, name: b, primary_key: id, sync_strategy: full}\n```\n",
	})
	_, err := load(home, nil)
	assertErrors(t, err,
		`.env:1: expected KEY=VALUE, got "not a line"`,
		`config/instance.yaml:2: server.hostnme: unknown key (did you mean "hostname"?)`,
		`docs/data_description.md:3: table "b": sync_strategy: "full" is not one of full_refresh, incremental, partitioned (did you mean "full_refresh"?)`,
	)
	var ce *Error
	if !errors.As(err, &ce) || ce.File != ".env" || ce.Line != 1 {
		t.Errorf("errors.As(*Error) = %+v", ce)
	}
}

func TestLoadReadsProcessEnvAndLeavesItAlone(t *testing.T) {
	t.Setenv("ANALYST_CONFIG_TEST_NAME", "From process")
	home := writeHome(t, map[string]string{
		".env":                     "ANALYST_CONFIG_TEST_NAME=from dotenv\nANALYST_CONFIG_TEST_ONLY_DOTENV=1\n",
		"config/instance.yaml":     "instance:\n  name: ${ANALYST_CONFIG_TEST_NAME}\n",
		"docs/data_description.md": minimalCatalogue,
	})
	c, err := Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if c.Instance.Instance.Name != "From process" {
		t.Errorf("name = %q", c.Instance.Instance.Name)
	}
	if _, set := os.LookupEnv("ANALYST_CONFIG_TEST_ONLY_DOTENV"); set {
		t.Error(".env leaked into the process environment")
	}
	if v, _ := c.LookupEnv("ANALYST_CONFIG_TEST_ONLY_DOTENV"); v != "1" {
		t.Errorf("LookupEnv = %q", v)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	inst := "instance: {name: x}\ndatasets:\n  base: &base {label: Base, size_hint: 1 GB}\n  more:\n    <<: *base\n    label: More\n  bad:\n    <<: {lable: typo}\n"
	err := loadInstance(t, inst, nil)
	assertErrors(t, err, `config/instance.yaml:8: datasets.bad.lable: unknown key (did you mean "label"?)`)

	home := writeHome(t, map[string]string{"config/instance.yaml": inst[:strings.Index(inst, "  bad:")], "docs/data_description.md": minimalCatalogue})
	c := mustLoad(t, home, nil)
	if d := c.Instance.Datasets["more"]; d.Label != "More" || d.SizeHint != "1 GB" {
		t.Errorf("merged dataset = %+v", d)
	}
}
