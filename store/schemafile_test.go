package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ai-data-analyst/analyst/config"
)

type schemaDoc struct {
	Metadata map[string]any `yaml:"_metadata"`
	Tables   map[string]struct {
		TableID       string   `yaml:"table_id"`
		Description   string   `yaml:"description"`
		PrimaryKey    []string `yaml:"primary_key"`
		SyncStrategy  string   `yaml:"sync_strategy"`
		PartitionedBy string   `yaml:"partitioned_by"`
		Columns       []struct {
			Name, Type, Description string
			SourceType              string `yaml:"source_type"`
		}
	}
}

func readSchema(t *testing.T, path string) (schemaDoc, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d schemaDoc
	if err := yaml.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d, string(raw)
}

func TestWriteSchemaFiles(t *testing.T) {
	root := filepath.Join(t.TempDir(), "parquet")
	tmp := t.TempDir()
	ctx := context.Background()
	db := engineForTest(t)

	os.MkdirAll(filepath.Join(root, "shop"), 0o755)
	productCols := []Column{{Name: "price", Type: "DECIMAL(10,2)"}, {Name: "added", Type: "DATE"}}
	p := stage(t, tmp, "products", "sku,price,added,weight\nA1,1.50,2024-01-01,0.5\n", productCols...)
	os.Rename(p, filepath.Join(root, "shop", "products.parquet"))

	// Partitions written by the merge engine; the later one has an extra column.
	orders := filepath.Join(root, "shop", "orders")
	part := Partitioning{Column: "at", Granularity: "month"}
	oc := Column{Name: "at", Type: "TIMESTAMP_TZ"}
	if _, err := UpsertPartitions(ctx, db, stage(t, tmp, "o1", "id,at\n1,2024-01-05 00:00:00Z\n", oc), orders, part, []string{"id"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := UpsertPartitions(ctx, db, stage(t, tmp, "o2", "id,at,coupon\n2,2024-02-05 00:00:00Z,X\n", oc), orders, part, []string{"id"}, false); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "hr"), 0o755)
	os.Rename(stage(t, tmp, "salaries", "person,salary\nann,100\n"), filepath.Join(root, "hr", "salaries.parquet"))
	os.MkdirAll(filepath.Join(root, "kbc"), 0o755)
	os.Rename(stage(t, tmp, "events", "id,kind\n1,x\n"), filepath.Join(root, "kbc", "events.parquet"))

	tables := []config.Table{
		{ID: "in.c-shop.products", Name: "products", Folder: "shop", Description: "Products", PrimaryKey: []string{"sku"}, SyncStrategy: config.FullRefresh,
			Columns: []config.Column{{Name: "price", Type: "DECIMAL(10,2)", Description: "Unit price"}}},
		{ID: "in.c-shop.orders", Name: "orders", Folder: "shop", Description: "Orders", PrimaryKey: []string{"id"}, SyncStrategy: config.Partitioned, PartitionBy: "at"},
		{ID: "in.c-hr.salaries", Name: "salaries", Folder: "hr", Description: "Pay", PrimaryKey: []string{"person"}, SyncStrategy: config.FullRefresh, Private: true},
		{ID: "in.c-kbc.events", Name: "events", Folder: "kbc", Description: "Events", PrimaryKey: []string{"id"}, SyncStrategy: config.FullRefresh, Dataset: "telemetry"},
		{ID: "in.c-shop.never", Name: "never", Folder: "shop", Description: "Not synced yet", SyncStrategy: config.FullRefresh},
	}
	out := t.TempDir()
	o := SchemaFiles{
		ParquetRoot: root,
		Public:      filepath.Join(out, "schema.yml"),
		Private:     filepath.Join(out, "private", "schema.yml"),
		DatasetDir:  filepath.Join(out, "datasets"),
		IsPrivate:   func(t config.Table) bool { return t.Private },
		Source:      "Keboola Storage API",
		Now:         time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC),
	}
	written, err := WriteSchemaFiles(tables, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 3 {
		t.Errorf("written %v", written)
	}

	pub, raw := readSchema(t, o.Public)
	if !strings.HasPrefix(raw, "# AUTO-GENERATED") || pub.Metadata["_schema_version"] != 2 || pub.Metadata["generated_at"] != "2024-06-01T12:00:00Z" || pub.Metadata["source"] != "Keboola Storage API" {
		t.Errorf("header/metadata: %v\n%s", pub.Metadata, raw)
	}
	if len(pub.Tables) != 2 || strings.Contains(raw, "salar") || strings.Contains(raw, "events") {
		t.Errorf("public schema must hold products and orders only:\n%s", raw)
	}
	prod := pub.Tables["products"]
	types := map[string]string{}
	for _, c := range prod.Columns {
		types[c.Name] = c.Type
	}
	if types["sku"] != "string" || types["price"] != "decimal128(10, 2)" || types["added"] != "date32[day]" || types["weight"] != "double" {
		t.Errorf("product types %v", types)
	}
	if prod.Columns[1].SourceType != "DECIMAL(10,2)" || prod.Columns[1].Description != "Unit price" || prod.TableID != "in.c-shop.products" || prod.PrimaryKey[0] != "sku" {
		t.Errorf("product entry %+v", prod)
	}
	ord := pub.Tables["orders"]
	var names []string
	for _, c := range ord.Columns {
		names = append(names, c.Name+":"+c.Type)
	}
	if strings.Join(names, ",") != "id:int64,at:timestamp[us, tz=UTC],coupon:string" || ord.PartitionedBy != "at" {
		t.Errorf("orders (union over partitions) %v partitioned_by %q", names, ord.PartitionedBy)
	}

	priv, _ := readSchema(t, o.Private)
	if len(priv.Tables) != 1 || priv.Tables["salaries"].TableID != "in.c-hr.salaries" {
		t.Errorf("private schema %+v", priv.Tables)
	}
	ds, _ := readSchema(t, filepath.Join(out, "datasets", "telemetry", "schema.yml"))
	if len(ds.Tables) != 1 || ds.Tables["events"].TableID != "in.c-kbc.events" {
		t.Errorf("dataset schema %+v", ds.Tables)
	}

	// Without a private path, private tables are left out, not put in the public file.
	o.Private = ""
	if _, err := WriteSchemaFiles(tables, o); err != nil {
		t.Fatal(err)
	}
	if _, raw := readSchema(t, o.Public); strings.Contains(raw, "salaries") {
		t.Error("a private table reached the public schema")
	}
}

// A schema whose content did not change keeps its file (and its time), so pulls skip it.
func TestSchemaFileKeptWhenUnchanged(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sales"), 0o755)
	os.Rename(stage(t, t.TempDir(), "orders", "id,amount\n1,2.5\n"), filepath.Join(root, "sales", "orders.parquet"))
	tables := []config.Table{{ID: "a.orders", Name: "orders", Folder: "sales", SyncStrategy: config.FullRefresh, PrimaryKey: []string{"id"}}}
	out := filepath.Join(t.TempDir(), "schema.yml")
	o := SchemaFiles{ParquetRoot: root, Public: out, IsPrivate: func(config.Table) bool { return false }, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := WriteSchemaFiles(tables, o); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(out)
	o.Now = o.Now.Add(time.Hour)
	written, err := WriteSchemaFiles(tables, o)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(out)
	if len(written) != 0 || string(first) != string(second) {
		t.Fatalf("an unchanged schema was rewritten: %v", written)
	}
	tables[0].Description = "now described"
	if written, _ := WriteSchemaFiles(tables, o); len(written) != 1 {
		t.Fatal("a changed schema must be written")
	}
}
