package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// loadCatalogueErr loads an instance with the given catalogue files and returns the error.
func loadCatalogueErr(t *testing.T, instance string, files map[string]string) error {
	t.Helper()
	all := map[string]string{"config/instance.yaml": instance}
	for k, v := range files {
		all[k] = v
	}
	_, err := load(writeHome(t, all), nil)
	return err
}

func TestCatalogueErrors(t *testing.T) {
	md := "# Catalogue\n\nIntro.\n\n```yaml\n" + `tables:
  - id: in.c-a.orders
    name: orders
    primary_key: id
    sync_stratgy: full_refresh
  - id: in.c-a.items
    name: items
    primary_key: id
    sync_strategy: increment
  - id: in.c-a.events
    name: events
    primary_key: id
    sync_strategy: partitioned
    partition_granularity: week
  - name: nameless
    description: no id, key or strategy
` + "```\n\nMore prose.\n\n```yaml\n" + `tables:
  - id: in.c-a.runs
    name: runs
    primary_key: id
    sync_strategy: full_refresh
    schedule: every 10s
    source: bigqeury
    dataset: jria
    columns:
      - {name: id, type: INT}
      - {name: id, type: STRING}
      - {name: amount, type: "DECIMAL(40,2)"}
      - {type: DATE}
    where_filters:
      - column: day
        operator: gte
        values: ["{{last_weak}}", "{{yesterday}}"]
      - {values: []}
    foreign_keys:
      - {column: x, references: nowhere}
    csv: {delimiter: ";;", encoding: ebcdic}
  - id: in.c-a.bad
    name: ../escape
    primary_key: id
    sync_strategy: full_refresh
    folder: .hidden
    incremental_window_days: -1
folder_mapping: [not, a, map]
extra: 1
` + "```\n"
	inst := minimalInstance + "data_source:\n  type: keboola\n  keboola: {}\n  bigquery: {}\ndatasets:\n  jira: {label: Jira}\n"
	err := loadCatalogueErr(t, inst, map[string]string{"docs/data_description.md": md})
	at := func(marker string) string { return fmt.Sprintf("docs/data_description.md:%d", lineOf(t, md, marker)) }
	assertErrors(t, err,
		at("in.c-a.orders")+`: table "orders": sync_strategy: required`,
		at("sync_stratgy")+`: table "orders": sync_stratgy: unknown key (did you mean "sync_strategy"?)`,
		at("increment")+`: table "items": sync_strategy: "increment" is not one of full_refresh, incremental, partitioned (did you mean "incremental"?)`,
		at("sync_strategy: partitioned")+`: table "events": sync_strategy: partitioned needs partition_by (the date or timestamp column that picks the partition)`,
		at("week")+`: table "events": partition_granularity: "week" is not one of month, day, year`,
		at("name: nameless")+`: table "nameless": id: required`,
		at("name: nameless")+`: table "nameless": primary_key: required`,
		at("name: nameless")+`: table "nameless": sync_strategy: required`,
		at("every 10s")+`: table "runs": schedule: schedule "every 10s": the interval must be at least 1m`,
		at("bigqeury")+`: table "runs": source: "bigqeury" is not one of bigquery, keboola (did you mean "bigquery"?) (configure it under data_source in config/instance.yaml)`,
		at("jria")+`: table "runs": dataset: "jria" is not one of jira (did you mean "jira"?) (datasets are listed in config/instance.yaml)`,
		at("type: INT}")+`: table "runs": columns[0].type: "INT" is not a column type (did you mean INTEGER?)`,
		at("{name: id, type: STRING}")+`: table "runs": columns[1].name: column "id" is declared twice`,
		at("DECIMAL(40,2)")+`: table "runs": columns[2].type: DECIMAL(40,2): precision must be 1 to 38 and scale at most the precision`,
		at("{type: DATE}")+`: table "runs": columns[3].name: required`,
		at("operator: gte")+`: table "runs": where_filters[0].operator: "gte" is not one of eq, ne, gt, ge, lt, le (did you mean "ge"?)`,
		at("last_weak")+`: table "runs": where_filters[0].values[0]: unknown placeholder {{last_weak}} (did you mean {{last_week}}?)`,
		at("last_weak")+`: table "runs": where_filters[0].values[1]: unknown placeholder {{yesterday}} (known: last_2_months, last_2_years, last_3_months, last_6_months, last_month, last_week, last_year, today)`,
		at("{values: []}")+`: table "runs": where_filters[1].column: required`,
		at("{values: []}")+`: table "runs": where_filters[1].values: at least one value is required`,
		at("references: nowhere")+`: table "runs": foreign_keys[0]: want {column: col, references: table.column}`,
		at("delimiter")+`: table "runs": csv: delimiter ";;" must be one character (write a tab as "\t")`,
		at("delimiter")+`: table "runs": csv: encoding "ebcdic" is not one of utf-8, latin-1, windows-1252`,
		at("../escape")+`: table "../escape": name: "../escape" cannot be a file name (no /, \, leading dot or control characters)`,
		at(".hidden")+`: table "../escape": folder: ".hidden" cannot be a folder name (no /, \, leading dot or control characters)`,
		at("incremental_window_days: -1")+`: table "../escape": incremental_window_days: must not be negative`,
		at("folder_mapping: [not")+": folder_mapping: cannot unmarshal !!seq into map[string]string",
		at("extra: 1")+`: extra: unknown key (known keys: folder_mapping, tables)`,
	)
}

func TestCatalogueYAMLErrors(t *testing.T) {
	md := "# T\n\n```yaml\ntables:\n  - id: a.b\n    name: x\n   bad: indent\n```\n\n```yaml\ntables: [\n  {id: a.c\n```\n\ntext\n\n```yaml\n- just\n- a list\n```\n\n```yaml\ntables:\n  - 42\n```\n\n```yaml\ntables:\n  - {id: never.closed, name: z, primary_key: id, sync_strategy: full_refresh}\n"
	err := loadCatalogueErr(t, minimalInstance, map[string]string{"docs/data_description.md": md})
	at := func(marker string) string { return fmt.Sprintf("docs/data_description.md:%d", lineOf(t, md, marker)) }
	assertErrors(t, err,
		at("  - id: a.b")+": invalid YAML: did not find expected '-' indicator (in the list or mapping starting on this line)",
		at("  {id: a.c")+": invalid YAML: did not find expected ',' or '}' (in the list or mapping starting on this line)",
		at("- just")+": a ```yaml block of the catalogue must be a mapping with tables: and folder_mapping:",
		at("- 42")+": tables: each table must be a mapping (id:, name:, ...)",
		fmt.Sprintf("docs/data_description.md:%d: ```yaml block is never closed", lineOf(t, md, "never.closed")-2),
	)
}

func TestDuplicateNamesAcrossFiles(t *testing.T) {
	main := "```yaml\ntables:\n  - {id: in.c-a.orders, name: orders, primary_key: id, sync_strategy: full_refresh}\n  - {id: in.c-a.x, name: x, primary_key: id, sync_strategy: full_refresh}\n```\n"
	extra := "# Dataset\n\n```yaml\ntables:\n  - id: in.c-b.orders\n    name: orders\n    primary_key: id\n    sync_strategy: full_refresh\n```\n"
	err := loadCatalogueErr(t, minimalInstance, map[string]string{"docs/data_description.md": main, "docs/datasets/shop.md": extra})
	assertErrors(t, err, `docs/datasets/shop.md:5: table "orders": name: duplicate table name (also defined at docs/data_description.md:3)`)
}

func TestMergeDatasetFiles(t *testing.T) {
	main := "```yaml\nfolder_mapping:\n  in.c-a: alpha\n  in.c-b: beta\ntables:\n  - {id: in.c-a.one, name: one, primary_key: id, sync_strategy: full_refresh}\n```\n" +
		"text between blocks\n\n~~~yaml\ntables:\n  - {id: in.c-b.two, name: two, primary_key: id, sync_strategy: full_refresh}\n~~~\n" +
		"An example that is not parsed:\n\n````markdown\n```yaml\ntables: [broken\n```\n````\n"
	files := map[string]string{
		"docs/data_description.md": main,
		"docs/datasets/2-later.md": "```yaml\nfolder_mapping: {in.c-b: bravo}\ntables:\n  - {id: in.c-c.four, name: four, primary_key: id, sync_strategy: full_refresh}\n```\n",
		"docs/datasets/1-first.md": "```yaml\ntables:\n  - {id: in.c-c.three, name: three, primary_key: id, sync_strategy: full_refresh, folder: own}\n```\n",
		"docs/datasets/notes.txt":  "```yaml\ntables: [ignored\n```\n",
	}
	all := map[string]string{"config/instance.yaml": minimalInstance}
	for k, v := range files {
		all[k] = v
	}
	c := mustLoad(t, writeHome(t, all), nil)
	var got []string
	for _, tb := range c.Catalogue.Tables {
		got = append(got, fmt.Sprintf("%s:%s@%s:%d", tb.Name, tb.Folder, tb.File, tb.Line))
	}
	want := []string{
		"one:alpha@docs/data_description.md:6",
		"two:bravo@docs/data_description.md:12", // folder_mapping from a later file applies to earlier tables
		"three:own@docs/datasets/1-first.md:3",
		"four:in.c-c@docs/datasets/2-later.md:4",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tables:\n got  %v\n want %v", got, want)
	}
	if !reflect.DeepEqual(c.Catalogue.FolderMapping, map[string]string{"in.c-a": "alpha", "in.c-b": "bravo"}) {
		t.Errorf("folder_mapping = %v", c.Catalogue.FolderMapping)
	}
}

func TestPlaceholders(t *testing.T) {
	// fixedNow is 2025-03-10 23:30 UTC: the dates are UTC days, whatever the local zone.
	want := map[string]string{
		"today": "2025-03-10", "last_week": "2025-03-03", "last_month": "2025-02-08", "last_2_months": "2025-01-09",
		"last_3_months": "2024-12-10", "last_6_months": "2024-09-11", "last_year": "2024-03-10", "last_2_years": "2023-03-11",
	}
	var values, expect []string
	for name, date := range want {
		values = append(values, fmt.Sprintf(`"from {{%s}} on"`, name))
		expect = append(expect, "from "+date+" on")
	}
	md := "```yaml\ntables:\n  - id: a.b\n    name: b\n    primary_key: id\n    sync_strategy: full_refresh\n    where_filters:\n      - {column: d, operator: ge, values: [" + strings.Join(values, ", ") + "]}\n      - {column: s, values: [open]}\n```\n"
	c := mustLoad(t, writeHome(t, map[string]string{"config/instance.yaml": minimalInstance, "docs/data_description.md": md}), nil)
	f := c.Catalogue.Tables[0].WhereFilters
	if !reflect.DeepEqual(f[0].Values, expect) {
		t.Errorf("values:\n got  %v\n want %v", f[0].Values, expect)
	}
	if f[1].Operator != "eq" {
		t.Errorf("default operator = %q, want eq", f[1].Operator)
	}
}

func TestTableDefaults(t *testing.T) {
	md := "```yaml\ntables:\n" +
		"  - {id: a.inc, name: inc, primary_key: id, sync_strategy: incremental, incremental_window_days: 3, initial_load_chunk_days: 10}\n" +
		"  - {id: a.part, name: part, primary_key: id, sync_strategy: partitioned, partition_by: d, partition_granularity: day}\n" +
		"  - {id: a.full, name: full, primary_key: 'a ,b,, c', sync_strategy: full_refresh, description: ''}\n```\n"
	c := mustLoad(t, writeHome(t, map[string]string{"config/instance.yaml": minimalInstance, "docs/data_description.md": md}), nil)
	inc, _ := c.Catalogue.Table("inc")
	part, _ := c.Catalogue.Table("part")
	full, _ := c.Catalogue.Table("full")
	if inc.IncrementalWindowDays != 3 || inc.InitialLoadChunkDays != 10 || inc.PartitionGranularity != "" || inc.IsPartitioned() {
		t.Errorf("inc = %+v", inc)
	}
	if part.PartitionGranularity != Day || part.IncrementalWindowDays != 0 || !part.IsPartitioned() {
		t.Errorf("part = %+v", part)
	}
	if !reflect.DeepEqual(full.PrimaryKey, []string{"a", "b", "c"}) || full.IncrementalWindowDays != 0 {
		t.Errorf("full = %+v", full)
	}
}

func TestNormalizeType(t *testing.T) {
	for in, want := range map[string]string{
		"string": "STRING", "VARCHAR": "STRING", "text": "STRING", "Integer": "INTEGER", "BIGINT": "INTEGER",
		"numeric": "NUMERIC", "float": "NUMERIC", "DOUBLE": "NUMERIC", "boolean": "BOOLEAN", "date": "DATE",
		"timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP_NTZ", "TIMESTAMP_TZ": "TIMESTAMP_TZ",
		"decimal(12,2)": "DECIMAL(12,2)", "numeric(10, 2)": "DECIMAL(10,2)", " DECIMAL ( 38 , 0 ) ": "DECIMAL(38,0)",
	} {
		if got, err := normalizeType(in); err != nil || got != want {
			t.Errorf("normalizeType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":             "type required (one of STRING, INTEGER, NUMERIC, DECIMAL(p,s), BOOLEAN, DATE, TIMESTAMP, TIMESTAMP_NTZ, TIMESTAMP_TZ)",
		"BOOL":         `"BOOL" is not a column type (did you mean BOOLEAN?)`,
		"DECIMAL":      "DECIMAL needs a precision and a scale, e.g. DECIMAL(12,2)",
		"INT":          `"INT" is not a column type (did you mean INTEGER?)`,
		"DECIMAL(5,6)": "DECIMAL(5,6): precision must be 1 to 38 and scale at most the precision",
		"geography":    `"geography" is not a column type (one of STRING, INTEGER, NUMERIC, DECIMAL(p,s), BOOLEAN, DATE, TIMESTAMP, TIMESTAMP_NTZ, TIMESTAMP_TZ)`,
	} {
		if _, err := normalizeType(in); err == nil || err.Error() != want {
			t.Errorf("normalizeType(%q) error = %v; want %q", in, err, want)
		}
	}
}

func TestYAMLBlocks(t *testing.T) {
	md := "intro\n```yaml\na: 1\n```\n  ```YML  \nb: 2\n   ```\n````\n```yaml\nc: 3\n```\n````\n    ```yaml\nindented code\n```python\nx\n```\n~~~~yaml\nd: ```\n~~~\n~~~~\n"
	blocks, unclosed := yamlBlocks(md)
	got := fmt.Sprint(blocks)
	want := "[{2 a: 1} {5 b: 2} {18 d: ```\n~~~}]"
	if got != want || unclosed != 0 {
		t.Errorf("blocks = %q (unclosed %d), want %q", got, unclosed, want)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"sync_strategy", "primary_key", "partition_by", "partition_granularity", "name", "id"}
	for in, want := range map[string]string{
		"sync_stratgy": "sync_strategy", "primray_key": "primary_key", "Name": "name", "partiton_by": "partition_by",
		"nmae": "name", "colour": "", "x": "", "granularity": "partition_granularity", "INT": "",
	} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if d := distance("ca", "abc"); d != 3 {
		t.Errorf("OSA distance(ca, abc) = %d, want 3", d)
	}
}
