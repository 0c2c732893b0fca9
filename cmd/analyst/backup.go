package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/ops"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "backup", usage: "OUT.tar.gz [--state-only] [--server URL --token T]  archive the store, config, docs and Parquet (through the API while serve runs)", run: runBackup})
	register(command{name: "restore", usage: "IN.tar.gz [--force]  restore a backup into the instance folder (server stopped)", run: runRestore})
}

func runBackup(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("backup")
	stateOnly := fs.Bool("state-only", false, "only the store, config and docs; the Parquet tree can be synced again")
	server := fs.String("server", os.Getenv("ANALYST_SERVER"), "back up a running server through its API (env ANALYST_SERVER)")
	token := fs.String("token", "", "admin API token for --server (default env ANALYST_ADMIN_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: analyst backup OUT.tar.gz [--state-only] [--server URL --token T]")
	}
	out := fs.Arg(0)

	var write func(w io.Writer) error
	if *server == "" {
		paths, name := instancePaths(g)
		db, err := store.OpenDB(paths.Store)
		switch {
		case errors.Is(err, store.ErrInUse):
			g.logger.Info("the server is running: backing up through its API")
		case err != nil:
			return err
		default:
			defer store.CloseDB(db)
			write = func(w io.Writer) error {
				_, err := ops.Backup(ctx, w, db, paths, ops.BackupOptions{StateOnly: *stateOnly, Instance: name})
				return err
			}
		}
	}
	if write == nil {
		api, err := runningServer(*server, *token)
		if err != nil {
			return err
		}
		write = func(w io.Writer) error { return backupOverAPI(ctx, api, *stateOnly, w) }
	}

	// Written to a temp file beside OUT and verified before it takes OUT's name, so OUT is
	// always a complete archive.
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*") // mode 0600: the archive holds .env
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = write(tmp)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	var info *ops.BackupInfo
	if err == nil {
		info, err = ops.Verify(tmp)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := store.PublishFile(tmp.Name(), out); err != nil {
		return err
	}
	st, _ := os.Stat(out)
	kind := "full"
	if info.StateOnly {
		kind = "state only"
	}
	fmt.Printf("backup written: %s (%s, %.1f MiB, store schema %d)\n", out, kind, float64(st.Size())/(1<<20), info.SchemaVersion)
	return nil
}

// backupOverAPI streams POST /api/admin/backup into w.
func backupOverAPI(ctx context.Context, api *serverAPI, stateOnly bool, w io.Writer) error {
	path := "/api/admin/backup"
	if stateOnly {
		path += "?" + url.Values{"state_only": {"true"}}.Encode()
	}
	resp, err := api.do(ctx, http.MethodPost, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

func runRestore(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("restore")
	force := fs.Bool("force", false, "replace the existing store and files (the replaced Parquet trees are kept aside)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: analyst restore IN.tar.gz [--force]")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	paths, _ := instancePaths(g)
	res, err := ops.Restore(f, paths, ops.RestoreOptions{Force: *force})
	if errors.Is(err, store.ErrInUse) {
		return fmt.Errorf("%w (stop the server before restoring)", err)
	}
	if err != nil {
		return err
	}
	fmt.Printf("restored %d files from the backup of %s (%s) into %s\n", res.Files,
		orDefault(res.Info.Instance, "an instance"), res.Info.Created.Format("2006-01-02 15:04 UTC"), paths.Home)
	for _, k := range res.Kept {
		fmt.Printf("  the previous %s was kept as %s; delete it when satisfied\n", filepath.Base(strings.SplitN(k, ".pre-restore-", 2)[0]), k)
	}
	if res.Info.StateOnly {
		fmt.Println("  the backup holds no Parquet: `analyst sync` (or serve) brings the tables back")
	}
	fmt.Println("  start the server: it migrates the store if needed and finishes the runs that were in flight")
	return nil
}

// instancePaths lays out the instance folder, from its configuration when it loads (DATA_DIR
// may come from .env) and from the environment alone otherwise (a fresh folder to restore into).
func instancePaths(g *globals) (config.Paths, string) {
	cfg, err := config.Load(g.home)
	if err == nil {
		return cfg.Paths, cfg.Instance.Instance.Name
	}
	if !errors.Is(err, config.ErrNoInstance) {
		g.logger.Warn("configuration does not load; using the default layout", "error", err)
	}
	p, perr := config.NewPaths(g.home, os.LookupEnv)
	if perr != nil {
		p = config.Paths{Home: g.home}
	}
	return p, ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
