package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/config"
	_ "github.com/ai-data-analyst/analyst/connectors/csv"
	_ "github.com/ai-data-analyst/analyst/connectors/keboola"
	"github.com/ai-data-analyst/analyst/demo"
	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// app is an opened instance: configuration, store, event backend and the pipeline's router.
type app struct {
	cfg     *config.Config
	db      *bolt.DB
	log     *pipeline.BoltPubSub // the bbolt event log, also when NATS carries the pipeline
	backend pipeline.Backend
	runs    *store.Runs
	users   *store.Users
	policy  *access.Policy
	env     *handlers.Env
	jira    *handlers.Jira
	router  *pipeline.Router
	logger  *slog.Logger
	stop    context.CancelFunc
	done    chan struct{}
}

type openOptions struct {
	demo bool // write the demo instance when the folder has no configuration
	// api: the portal, triggers and notify stage of a scale-out, whose sync stages run in
	// workers over NATS; run records follow the workers' events.
	api bool
}

// flags returns a command's flag set; --home is accepted after the command name too.
func (g *globals) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("analyst "+name, flag.ContinueOnError)
	fs.StringVar(&g.home, "home", g.home, "instance folder (env ANALYST_HOME)")
	return fs
}

func loadConfig(g *globals, opts openOptions) (*config.Config, error) {
	cfg, err := config.Load(g.home)
	if errors.Is(err, config.ErrNoInstance) && opts.demo {
		g.logger.Info("no config/instance.yaml: writing the demo instance", "home", g.home)
		if err := demo.Write(g.home, demo.Options{}); err != nil {
			return nil, err
		}
		cfg, err = config.Load(g.home)
	}
	if errors.Is(err, config.ErrNoInstance) {
		return nil, fmt.Errorf("%w (run `analyst init`, or `analyst init --demo` for the demo instance)", err)
	}
	return cfg, err
}

// openApp loads the instance and opens its store and pipeline (not yet running).
func openApp(g *globals, opts openOptions) (*app, error) {
	cfg, err := loadConfig(g, opts)
	if err != nil {
		return nil, err
	}
	db, err := store.OpenDB(cfg.Paths.Store)
	if err != nil {
		return nil, err
	}
	if _, err := store.Migrate(db, g.logger); err != nil {
		store.CloseDB(db)
		return nil, err
	}
	a := &app{cfg: cfg, db: db, logger: g.logger}
	if err := a.init(opts.api); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *app) init(api bool) error {
	var err error
	if api && a.cfg.Instance.Pipeline.Backend != config.BackendNATS {
		return errors.New("--role api leaves the sync stages to workers over NATS: set pipeline.backend: nats")
	}
	if a.log, err = pipeline.NewBoltPubSub(a.db, nil); err != nil {
		return err
	}
	a.backend = a.log
	if a.cfg.Instance.Pipeline.Backend == config.BackendNATS {
		if a.backend, err = pipeline.NewNATSBackend(a.cfg.Instance.Pipeline.NATSURL, a.logger); err != nil {
			return err
		}
	}
	if a.runs, err = store.NewRuns(a.db); err != nil {
		return err
	}
	if a.users, err = store.NewUsers(a.db); err != nil {
		return err
	}
	a.policy = &access.Policy{Config: a.cfg, Users: a.users}
	a.env = handlers.NewEnv(a.cfg, a.runs, a.logger)
	a.router, err = pipeline.NewRouter(a.backend, pipeline.RouterConfig{Logger: a.logger, OnStage: a.env.TrackStage, Concurrency: a.cfg.Instance.Pipeline.Concurrency})
	if err != nil {
		return err
	}
	if api {
		handlers.RegisterNotify(a.router, a.env)
		followRuns(a.router, a.runs)
	} else {
		handlers.Register(a.router, a.env)
	}
	// The Jira stages run where the webhooks arrive: in the api process of a scale-out (the one
	// consumer of the jira topics, so one writer per month), else in the one server.
	a.jira, err = newJira(a)
	return err
}

// start runs the router until close.
func (a *app) start(ctx context.Context) error {
	ctx, a.stop = context.WithCancel(ctx)
	a.done = make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(a.done)
		errc <- a.router.Run(ctx)
	}()
	select {
	case <-a.router.Running():
		return nil
	case err := <-errc:
		return fmt.Errorf("pipeline: %w", err)
	}
}

func (a *app) close() {
	if a.stop != nil {
		a.stop()
		a.router.Close()
		<-a.done
	}
	if a.backend != nil && a.backend != pipeline.Backend(a.log) {
		a.backend.Close()
	}
	if a.env != nil {
		a.env.Close()
	}
	if a.log != nil {
		a.log.Close()
	}
	store.CloseDB(a.db)
}
