package main

import (
	"context"
	"fmt"

	"github.com/ai-data-analyst/analyst/ops"
)

func init() {
	register(command{name: "ops", usage: "unit|caddy|install  print the systemd unit, the Caddyfile example or the install script", run: runOps})
}

func runOps(ctx context.Context, g *globals, args []string) error {
	files := map[string]string{"unit": ops.Unit, "caddy": ops.Caddyfile, "install": ops.InstallScript}
	if len(args) != 1 || files[args[0]] == "" {
		return &exitError{code: 2, msg: "usage: analyst ops unit|caddy|install"}
	}
	fmt.Print(files[args[0]])
	return nil
}
