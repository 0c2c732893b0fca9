package config

import (
	"strings"
	"testing"
)

func TestSourceScheduleIsTheDefaultOfItsTables(t *testing.T) {
	home := writeHome(t, map[string]string{
		"config/instance.yaml": "instance: {name: S}\ndata_source:\n  type: csv\n  csv:\n    path: src\n    schedule: every 6h\n",
		"docs/data_description.md": "```yaml\ntables:\n" +
			"  - {id: a.x, name: x, description: X, primary_key: id, sync_strategy: full_refresh}\n" +
			"  - {id: a.y, name: y, description: Y, primary_key: id, sync_strategy: full_refresh, schedule: \"daily 07:00\"}\n```\n",
	})
	c := mustLoad(t, home, nil)
	x, _ := c.Catalogue.Table("x")
	y, _ := c.Catalogue.Table("y")
	if x.Schedule != "every 6h" || y.Schedule != "daily 07:00" {
		t.Fatalf("schedules: x %q, y %q", x.Schedule, y.Schedule)
	}
	// The connector's strict decoding does not see the schedule key.
	var block struct {
		Path string `yaml:"path"`
	}
	if err := c.ConnectorSettings("csv").Decode(&block); err != nil || block.Path != "src" {
		t.Fatalf("csv block: %+v %v", block, err)
	}
}

func TestBadSourceScheduleNamesFileAndLine(t *testing.T) {
	yaml := "instance: {name: S}\ndata_source:\n  type: csv\n  csv:\n    schedule: every fortnight\n"
	home := writeHome(t, map[string]string{
		"config/instance.yaml":     yaml,
		"docs/data_description.md": "```yaml\ntables: []\n```\n",
	})
	_, err := load(home, nil)
	if err == nil || !strings.Contains(err.Error(), "config/instance.yaml:5: data_source.csv.schedule") {
		t.Fatalf("error: %v", err)
	}
}
