package main

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/notify"
	"github.com/ai-data-analyst/analyst/schedule"
)

// setupNotifications creates the notification service on the app's router (before a.start): the
// notify stage queues the scripts that depend on a published table and the service's consumer
// runs them. Telegram is on when telegram.bot_token is set; the desktop channel when
// desktop.jwt_secret is set.
func (a *app) setupNotifications() (*notify.Service, error) {
	svc, err := notify.New(notify.Options{Config: a.cfg, DB: a.db, Users: a.users, Policy: a.policy, Logger: a.logger})
	if err != nil {
		return nil, err
	}
	svc.Register(a.router)
	a.env.Scripts = svc
	inst := a.cfg.Instance
	publicURL := strings.TrimRight(inst.Instance.PublicURL, "/")
	if publicURL == "" && inst.Server.Hostname != "" {
		publicURL = "https://" + inst.Server.Hostname
	}
	if tg := inst.Telegram; tg.BotToken != "" {
		svc.Telegram = &notify.Telegram{BaseURL: tg.BaseURL, Token: tg.BotToken, Service: svc, Logger: a.logger,
			PortalURL: publicURL, Client: &http.Client{Timeout: 2 * time.Minute}}
		svc.AddChannel(svc.Telegram)
	}
	if d := inst.Desktop; d.JWTSecret != "" {
		svc.Desktop = &notify.Desktop{Secret: []byte(d.JWTSecret), Issuer: d.JWTIssuer, Scheme: d.URLScheme, Service: svc,
			Logger: a.logger, PublicURL: publicURL}
		svc.AddChannel(svc.Desktop)
	}
	return svc, nil
}

// runNotifications starts the Telegram bot's polling and puts every script's schedule on the
// scheduler (call before scheduler.Run).
func (a *app) runNotifications(ctx context.Context, svc *notify.Service, scheduler *schedule.Scheduler) {
	if err := svc.Schedule(scheduler); err != nil {
		a.logger.Error("notification schedules", "error", err)
	}
	if svc.Telegram != nil {
		go svc.Telegram.Poll(ctx)
	}
	go func() {
		// Finished run requests are remembered as long as the event log keeps them.
		for {
			if n, err := svc.State.PruneRequests(time.Now().Add(-logRetention)); err != nil {
				a.logger.Error("prune notification requests", "error", err)
			} else if n > 0 {
				a.logger.Info("pruned notification requests", "requests", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Hour):
			}
		}
	}()
}
