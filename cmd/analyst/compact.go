package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "compact", usage: "rewrite data/analyst.db without free pages (server stopped)", run: runCompact})
}

func runCompact(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("compact")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(g, openOptions{})
	if err != nil {
		return err
	}
	// Holding the store proves no server is using it.
	db, err := store.OpenDB(cfg.Paths.Store)
	if err != nil {
		return err
	}
	store.CloseDB(db)
	before, err := os.Stat(cfg.Paths.Store)
	if err != nil {
		return err
	}
	tmp := cfg.Paths.Store + ".compact"
	os.Remove(tmp)
	if err := pipeline.CompactFile(cfg.Paths.Store, tmp); err != nil {
		return err
	}
	if err := store.PublishFile(tmp, cfg.Paths.Store); err != nil {
		return err
	}
	after, _ := os.Stat(cfg.Paths.Store)
	fmt.Printf("compacted %s: %d -> %d bytes\n", cfg.Paths.Store, before.Size(), after.Size())
	return nil
}
