package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "doctor", usage: "check configuration, sources, store and disk; print what to fix", run: runDoctor})
}

// minFreeDisk is the free space below which doctor warns.
const minFreeDisk = 1 << 30

func runDoctor(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("doctor")
	if err := fs.Parse(args); err != nil {
		return err
	}
	failed := 0
	report := func(ok bool, what, detail string) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed++
		}
		fmt.Printf("%s  %-28s %s\n", mark, what, detail)
	}
	cfg, err := loadConfig(g, openOptions{})
	if err != nil {
		report(false, "configuration", err.Error())
		return &exitError{code: 1, msg: "fix the configuration first"}
	}
	report(true, "configuration", fmt.Sprintf("%s: %d tables", cfg.Instance.Instance.Name, len(cfg.Catalogue.Tables)))

	for _, name := range cfg.Sources() {
		c, err := connectors.Open(name, cfg.ConnectorSettings(name))
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = c.Check(cctx)
			cancel()
		}
		detail := "connection works"
		if err != nil {
			detail = err.Error()
		}
		report(err == nil, "source "+name, detail)
	}

	db, err := store.OpenDB(cfg.Paths.Store)
	switch {
	case errors.Is(err, store.ErrInUse):
		report(true, "store", "in use by the running server")
	case err != nil:
		report(false, "store", err.Error())
	default:
		report(true, "store", cfg.Paths.Store)
		store.CloseDB(db)
	}

	if err := checkWritable(cfg.Paths.Parquet); err != nil {
		report(false, "parquet folder", err.Error())
	} else {
		report(true, "parquet folder", cfg.Paths.Parquet)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(cfg.Paths.DataDir, &st); err == nil {
		free := int64(st.Bavail) * int64(st.Bsize)
		report(free >= minFreeDisk, "disk", fmt.Sprintf("%.1f GiB free in %s", float64(free)/(1<<30), cfg.Paths.DataDir))
	}
	scheduled := 0
	for _, t := range cfg.Catalogue.Tables {
		if t.Schedule != "" {
			scheduled++
		}
	}
	report(true, "schedules", fmt.Sprintf("%d of %d tables scheduled", scheduled, len(cfg.Catalogue.Tables)))
	for _, c := range opsChecks(ctx, cfg) {
		report(c.ok, c.what, c.detail)
	}
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d check(s) failed", failed)}
	}
	return nil
}

// checkWritable creates the folder if needed and writes a file in it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	probe := filepath.Join(dir, ".doctor")
	defer os.Remove(probe)
	return store.WriteFileAtomic(probe, 0o644, func(w io.Writer) error { return nil })
}
