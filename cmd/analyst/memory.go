package main

import (
	"context"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/memory"
	"github.com/ai-data-analyst/analyst/store"
)

// setupMemory creates corporate memory on the app's router (before a.start): the memory stage
// runs collections, and the service publishes requests and audit events through the router.
// Without ai.api_key the collection is skipped; browsing, votes and rules still work.
func (a *app) setupMemory() (*memory.Service, error) {
	mem, err := store.NewMemory(a.db)
	if err != nil {
		return nil, err
	}
	provider, err := memory.NewProvider(a.cfg.Instance.AI, a.logger)
	if err != nil {
		return nil, err
	}
	svc := memory.New(a.cfg, mem, a.users, provider, memory.Options{}, a.logger)
	svc.SetPublisher(a.router.Publisher())
	handlers.RegisterMemory(a.router, svc)
	return svc, nil
}

// runMemory requests a collection on the service's interval until ctx ends.
func (a *app) runMemory(ctx context.Context, svc *memory.Service) {
	if svc.Provider == nil {
		a.logger.Info("corporate memory: no ai.api_key, notes are not collected")
		return
	}
	svc.Start(ctx)
}
