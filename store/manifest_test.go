package store

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/config"
)

// manifestInstance is an instance with a single-file table and a monthly partitioned one.
func manifestInstance(t *testing.T) *config.Config {
	t.Helper()
	home := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(home, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config/instance.yaml", "instance: {name: M}\ndata_source: {type: csv, csv: {path: src}}\n")
	write("docs/data_description.md", "```yaml\ntables:\n"+
		"  - {id: products, name: products, folder: shop, primary_key: sku, sync_strategy: full_refresh}\n"+
		"  - {id: orders, name: orders, folder: shop, primary_key: id, sync_strategy: partitioned, partition_by: at}\n```\n")
	write("docs/metrics/sales/revenue.yml", "name: revenue\ntable: orders\n")
	write("docs/notes.txt", "not published")
	write("data/metadata/schema.yml", "x: 1\n")
	write("data/metadata/private/schema.yml", "y: 1\n")
	write("data/metadata/sync_state.json", "{}")
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	db := duck(t)
	os.MkdirAll(filepath.Join(cfg.Paths.Parquet, "shop", "orders"), 0o755)
	for _, q := range []string{
		"COPY (SELECT 'A' || i AS sku, i * 1.5 AS price FROM range(3) t(i)) TO '" + filepath.Join(cfg.Paths.Parquet, "shop", "products.parquet") + "' (FORMAT parquet)",
		"COPY (SELECT i AS id FROM range(5) t(i)) TO '" + filepath.Join(cfg.Paths.Parquet, "shop", "orders", "2024_01.parquet") + "' (FORMAT parquet)",
		"COPY (SELECT i AS id FROM range(7) t(i)) TO '" + filepath.Join(cfg.Paths.Parquet, "shop", "orders", "2024_02.parquet") + "' (FORMAT parquet)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

func fileSHA(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func update(t *testing.T, cfg *config.Config) (*Manifest, bool) {
	t.Helper()
	files, err := ScanPublished(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, changed, err := UpdateManifest(ManifestPath(cfg), files, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return m, changed
}

func TestManifestVersionsOnlyOnChange(t *testing.T) {
	cfg := manifestInstance(t)
	m, changed := update(t, cfg)
	if !changed || m.Version != 1 {
		t.Fatalf("first update: version %d changed %v", m.Version, changed)
	}
	var paths []string
	for _, e := range m.Files {
		paths = append(paths, e.Path)
	}
	want := []string{"docs/data_description.md", "docs/metrics/sales/revenue.yml", "metadata/private/schema.yml",
		"metadata/schema.yml", "parquet/shop/orders/2024_01.parquet", "parquet/shop/orders/2024_02.parquet", "parquet/shop/products.parquet"}
	if len(paths) != len(want) {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	for i := range want {
		if paths[i] != want[i] {
			t.Fatalf("paths %v, want %v", paths, want)
		}
	}
	feb, _ := m.Lookup("parquet/shop/orders/2024_02.parquet")
	abs := filepath.Join(cfg.Paths.Parquet, "shop", "orders", "2024_02.parquet")
	if feb.SHA256 != fileSHA(t, abs) || feb.Rows != 7 || feb.Table != "orders" || feb.Partition != "2024_02" || feb.Schema == "" {
		t.Errorf("entry %+v", feb)
	}
	jan, _ := m.Lookup("parquet/shop/orders/2024_01.parquet")
	prod, _ := m.Lookup("parquet/shop/products.parquet")
	if jan.Schema != feb.Schema || prod.Schema == feb.Schema || prod.Rows != 3 || prod.Partition != "" {
		t.Errorf("schemas/rows: jan %+v feb %+v products %+v", jan, feb, prod)
	}

	// Nothing changed: same version, nothing written.
	before, _ := os.Stat(ManifestPath(cfg))
	if m2, changed := update(t, cfg); changed || m2.Version != 1 {
		t.Fatalf("no-change update: version %d changed %v", m2.Version, changed)
	}
	after, _ := os.Stat(ManifestPath(cfg))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("a no-change update rewrote the manifest")
	}

	// Same size and mtime: the previous hash is reused without reading the file (proved by
	// changing the content behind its back).
	orig := fileSHA(t, abs)
	st, _ := os.Stat(abs)
	b, _ := os.ReadFile(abs)
	b[len(b)/2] ^= 0xff
	os.WriteFile(abs, b, 0o644)
	os.Chtimes(abs, st.ModTime(), st.ModTime())
	if m3, changed := update(t, cfg); changed || m3.Version != 1 {
		t.Fatalf("hash not reused: version %d changed %v", m3.Version, changed)
	}

	// A touched but identical file is no new version; a rewritten one is.
	b[len(b)/2] ^= 0xff
	os.WriteFile(abs, b, 0o644)
	if fileSHA(t, abs) != orig {
		t.Fatal("restore failed")
	}
	if _, changed := update(t, cfg); changed {
		t.Error("touched identical file made a new version")
	}
	db := duck(t)
	if _, err := db.Exec("COPY (SELECT i AS id, 'x' AS note FROM range(9) t(i)) TO '" + abs + "' (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
	m4, changed := update(t, cfg)
	feb4, _ := m4.Lookup("parquet/shop/orders/2024_02.parquet")
	jan4, _ := m4.Lookup("parquet/shop/orders/2024_01.parquet")
	if !changed || m4.Version != 2 || feb4.Rows != 9 || feb4.Schema == feb.Schema || feb4.SHA256 != fileSHA(t, abs) || jan4 != jan {
		t.Errorf("after rewrite: version %d, feb %+v, jan %+v", m4.Version, feb4, jan4)
	}

	// A removed partition leaves the manifest.
	os.Remove(abs)
	m5, changed := update(t, cfg)
	if _, ok := m5.Lookup("parquet/shop/orders/2024_02.parquet"); ok || !changed || m5.Version != 3 {
		t.Errorf("removed partition: version %d, changed %v", m5.Version, changed)
	}
	loaded, err := LoadManifest(ManifestPath(cfg))
	if err != nil || loaded.Version != 3 || len(loaded.Files) != len(m5.Files) {
		t.Errorf("reloaded manifest: %+v, %v", loaded, err)
	}
}

func TestPublishedAt(t *testing.T) {
	cfg := manifestInstance(t)
	for _, p := range []string{"parquet/shop/products.parquet", "parquet/shop/orders/2024_01.parquet", "metadata/schema.yml",
		"metadata/private/profiles.json", "metadata/datasets/mkt/schema.yml", "docs/data_description.md", "docs/datasets/mkt.md", "docs/metrics/a/b.yml"} {
		if _, ok := PublishedAt(cfg, p); !ok {
			t.Errorf("%s not resolved", p)
		}
	}
	f, _ := PublishedAt(cfg, "parquet/shop/orders/2024_01.parquet")
	if f.Table != "orders" || f.Partition != "2024_01" || f.Abs != filepath.Join(cfg.Paths.Parquet, "shop", "orders", "2024_01.parquet") {
		t.Errorf("resolved %+v", f)
	}
	for _, p := range []string{"", "/etc/passwd", "parquet/../config/instance.yaml", "parquet/shop/../../analyst.db",
		"metadata/sync_state.json", "metadata/manifest.json", "parquet/shop/orders.parquet", "parquet/shop/products/x.parquet",
		"parquet/shop/orders/.2024_01.parquet.tmp-1", "docs/notes.txt", "docs//data_description.md", "docs/./data_description.md",
		"config/instance.yaml", "parquet\\shop\\products.parquet", "metadata/private/x/schema.yml"} {
		if f, ok := PublishedAt(cfg, p); ok {
			t.Errorf("%q resolved to %+v", p, f)
		}
	}
}
