package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/portal"
	"github.com/ai-data-analyst/analyst/store"
)

const loginLinkUsage = `usage: analyst users login-link --user EMAIL [--url PORTAL_URL]
       analyst users login-link --user EMAIL --server URL --token ADMIN_TOKEN   (while serve runs)`

// runLoginLink prints a single-use sign-in link (10 minutes) for a user: through the running
// server's API with --server, else from the store directly.
func runLoginLink(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("users login-link")
	user := fs.String("user", "", "the user's email")
	base := fs.String("url", "", "the portal's address for the link (default: instance.public_url)")
	server := fs.String("server", "", "a running server's URL (use its API)")
	token := fs.String("token", os.Getenv("ANALYST_TOKEN"), "an admin API token for --server (env ANALYST_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || fs.NArg() > 0 {
		return &exitError{code: 2, msg: loginLinkUsage}
	}
	if *server != "" {
		link, err := loginLinkFromServer(ctx, *server, *token, *user)
		if err != nil {
			return err
		}
		fmt.Println(link)
		return nil
	}
	cfg, err := loadConfig(g, openOptions{})
	if err != nil {
		return err
	}
	db, err := store.OpenDB(cfg.Paths.Store)
	if errors.Is(err, store.ErrInUse) {
		return fmt.Errorf("%w\n(while the server runs: analyst users login-link --user %s --server URL --token ADMIN_TOKEN)", err, *user)
	}
	if err != nil {
		return err
	}
	defer store.CloseDB(db)
	users, err := store.NewUsers(db)
	if err != nil {
		return err
	}
	links, err := store.NewLinks(db)
	if err != nil {
		return err
	}
	link, err := portal.LoginLink(users, links, strings.TrimRight(cmp.Or(*base, cfg.Instance.Instance.PublicURL), "/"), *user)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "sign-in link for %s (works once, for 10 minutes):\n", *user)
	fmt.Println(link)
	return nil
}

func loginLinkFromServer(ctx context.Context, server, token, email string) (string, error) {
	if token == "" {
		return "", errors.New("--server needs --token (an admin API token)")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := strings.TrimRight(server, "/") + "/api/admin/users/" + url.PathEscape(email) + "/login-link"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct{ URL, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("%s: %s", u, resp.Status)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%s: %s: %s", u, resp.Status, out.Error)
	}
	return out.URL, nil
}

// loopback reports whether a listen address is on this machine only: such a server without a
// public_url is a local (demo or development) instance, whose cookies may go over plain HTTP.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// localURL is the portal's address on a loopback listener, for links of a local instance.
func localURL(addr string) string {
	if !loopback(addr) {
		return ""
	}
	return "http://" + addr
}

// printAdminLoginLink prints a sign-in link for the default admin of a local instance (no
// public_url), so the demo can be opened in a browser at once.
func (a *app) printAdminLoginLink(listenURL string) {
	if a.cfg.Instance.Instance.PublicURL != "" {
		return
	}
	links, err := store.NewLinks(a.db)
	if err != nil {
		a.logger.Error("login link", "error", err)
		return
	}
	email := envOr("ANALYST_ADMIN_EMAIL", defaultAdmin)
	link, err := portal.LoginLink(a.users, links, listenURL, email)
	if err != nil {
		a.logger.Warn("no sign-in link for the admin", "user", email, "error", err)
		return
	}
	fmt.Fprintf(os.Stderr, "\nOpen the portal as %s (this link works once, for 10 minutes):\n  %s\n\n", email, link)
}
