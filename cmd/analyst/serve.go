package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/ops"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/schedule"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "serve", usage: "[--addr HOST:PORT]  run the portal, API, scheduler and pipeline (demo instance when unconfigured)", run: runServe})
}

// serveGCPercent is the Go GC target of a server when GOGC is unset: requests and rewrites
// allocate briefly, so collecting less often than Go's default (100) buys throughput. Measured
// on 2 cores: bench/portal p99 35 ms at 200 and 400, 45 ms at 100; bench/jira p99 0.9 s at 200
// with 40% less memory than at 400. GOMEMLIMIT still caps the heap.
const serveGCPercent = 200

// logRetention is how long acked events stay in the log.
const logRetention = 30 * 24 * time.Hour

func runServe(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("serve")
	addr := fs.String("addr", envOr("ANALYST_ADDR", "127.0.0.1:8080"), "listen address (env ANALYST_ADDR)")
	role := fs.String("role", "all", "all: everything in one process; api: portal, triggers and notifications with the sync stages in workers; worker: sync stages only (api and worker need pipeline.backend nats)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *role {
	case "all", "api":
	case "worker":
		return runWorker(ctx, g, nil)
	default:
		return fmt.Errorf("--role %q: must be all, api or worker", *role)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	a, err := openApp(g, openOptions{demo: *role == "all", api: *role == "api"})
	if err != nil {
		return err
	}
	defer a.close()
	notes, err := a.setupNotifications()
	if err != nil {
		return err
	}
	mem, err := a.setupMemory()
	if err != nil {
		return err
	}
	if err := a.start(ctx); err != nil {
		return err
	}
	if err := a.seedAdmin(); err != nil {
		return err
	}
	triggers := &handlers.Triggers{Env: a.env, Pub: a.router.Publisher()}
	srv := &http.Server{
		Handler: portal.New(portal.Deps{
			Config: a.cfg, Runs: a.runs, Replayer: pipeline.NewReplayer(a.poisonLog()),
			RequestSync: triggers.Request, Users: a.users, Policy: a.policy, Logger: a.logger,
			DB: a.db, Lags: a.lagger(), DevMode: loopback(*addr), LocalURL: localURL(*addr),
			Jira: a.jiraIntake(), Notify: notes, Memory: mem,
			Backup: func(ctx context.Context, w io.Writer, stateOnly bool) error {
				_, err := ops.Backup(ctx, w, a.db, a.cfg.Paths, ops.BackupOptions{StateOnly: stateOnly, Instance: a.cfg.Instance.Instance.Name})
				return err
			},
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	a.logger.Info("serving", "instance", a.cfg.Instance.Instance.Name, "url", "http://"+ln.Addr().String(), "home", a.cfg.Paths.Home)
	a.printAdminLoginLink("http://" + ln.Addr().String())

	scheduler := schedule.New(a.logger, nil)
	triggers.Schedule(scheduler)
	a.runNotifications(ctx, notes, scheduler)
	a.runMemory(ctx, mem)
	go scheduler.Run(ctx)
	triggers.WatchSources(ctx)
	go a.trimLog(ctx)
	if a.jira != nil {
		go a.jira.RunJobs(ctx)
	}
	if runID, err := triggers.SyncMissing(); err != nil {
		a.logger.Error("startup sync", "error", err)
	} else if runID != "" {
		a.logger.Info("startup sync of the tables never synced", "run_id", runID)
	}

	serveProfiles(a, os.Getenv("ANALYST_PPROF_ADDR"))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	a.logger.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// lagger is what tells the portal how far each stage is behind: the backend that carries the
// pipeline (the bbolt log, or JetStream's consumers).
func (a *app) lagger() pipeline.Lagger {
	if l, ok := a.backend.(pipeline.Lagger); ok {
		return l
	}
	return nil
}

// poisonLog is where failed messages are listed and replayed: the stream on NATS, where the
// stages publish them, else the bbolt log.
func (a *app) poisonLog() pipeline.PoisonLog {
	if n, ok := a.backend.(interface{ PoisonLog() pipeline.PoisonLog }); ok {
		return n.PoisonLog()
	}
	return a.log
}

// jiraIntake is the portal's Jira webhook intake; nil (the webhook answers 503) where the app
// has no Jira stages.
func (a *app) jiraIntake() portal.JiraIntake {
	if a.jira == nil {
		return nil
	}
	return a.jira
}

// trimLog drops acked events past the retention once an hour.
func (a *app) trimLog(ctx context.Context) {
	for {
		if n, err := a.log.Trim(time.Now().Add(-logRetention)); err != nil {
			a.logger.Error("trim event log", "error", err)
		} else if n > 0 {
			a.logger.Info("trimmed event log", "events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}

// defaultAdmin is the account created when an instance has no admin yet.
const defaultAdmin = "admin@localhost"

// seedAdmin makes sure someone can administer the instance: ANALYST_ADMIN_TOKEN (when set)
// becomes an admin API token; an instance without any admin gets one, whose token is printed
// once.
func (a *app) seedAdmin() error {
	email := envOr("ANALYST_ADMIN_EMAIL", defaultAdmin)
	if token := os.Getenv("ANALYST_ADMIN_TOKEN"); token != "" {
		if _, _, err := a.users.Authenticate(token); err == nil {
			return nil
		}
		if _, err := a.users.Add(email, store.RoleAdmin); err != nil {
			return err
		}
		_, err := a.users.AddToken(email, "ANALYST_ADMIN_TOKEN", token)
		return err
	}
	users, err := a.users.List()
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Role == store.RoleAdmin && !u.Disabled {
			return nil
		}
	}
	if _, err := a.users.Add(email, store.RoleAdmin); err != nil {
		return err
	}
	token, _, err := a.users.CreateToken(email, "first start")
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nNo admin yet: created %s. Its API token (shown once):\n  %s\n\n", email, token)
	return nil
}
