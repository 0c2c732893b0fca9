package notify_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/notify"
	"github.com/ai-data-analyst/analyst/workspace"
)

// TestMain lets this test binary stand in for `analyst sql` (what $ANALYST_BIN offers scripts).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "sql" {
		if err := notify.Query(context.Background(), os.Args[2:], os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestExampleScripts(t *testing.T) {
	cfg := instance(t)
	// Eight days of orders; the last day's revenue is half the average of the days before.
	writeParquet(t, filepath.Join(cfg.Paths.Parquet, "sales/orders.parquet"), `
		SELECT DATE '2026-11-20' + i::INTEGER AS order_date, CASE WHEN i = 7 THEN 50.0 ELSE 100.0 END AS total, 'delivered' AS status
		FROM range(8) t(i)
		UNION ALL SELECT DATE '2026-11-27', 1000.0, 'cancelled'`)
	orders, _ := cfg.Catalogue.Table("orders")
	r := &notify.Runner{TempRoot: t.TempDir(), ParquetRoot: cfg.Paths.Parquet}
	dir := t.TempDir()
	run := func(name string) notify.Outcome {
		body, err := fs.ReadFile(workspace.Examples, workspace.ExamplesDir+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		out := runScript(t, r, script(t, dir, name, string(body)), []config.Table{orders})
		if out.Err != nil {
			t.Fatalf("%s: %v", name, out.Err)
		}
		return out
	}

	out := run("revenue_drop.sh")
	if !out.Result.Notify || out.Result.Title != "Revenue dropped 50%" && out.Result.Title != "Revenue dropped 50.0%" || out.Result.Cooldown != "6h" {
		t.Fatalf("revenue_drop: %+v", out.Result)
	}
	if !strings.Contains(out.Result.Message, "7-day average: 100") {
		t.Fatalf("revenue_drop message: %q", out.Result.Message)
	}
	sc, _ := notify.NewScripts(dir).Load("ann@example.com", "revenue_drop.sh")
	if !sc.DependsOn("orders") {
		t.Fatal("revenue_drop must declare orders")
	}

	if out := run("data_freshness.sh"); out.Result.Notify {
		t.Fatalf("fresh data raised an alert: %+v", out.Result)
	}

	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 for daily_chart.py")
	}
	out = run("daily_chart.py")
	if !out.Result.Notify || out.ImageExt != ".png" || len(out.Image) < 100 || !strings.Contains(out.Result.Message, "2026-11-27: 50.00") {
		t.Fatalf("daily_chart: %+v, image %d bytes (%s)", out.Result, len(out.Image), out.Warning)
	}
}
