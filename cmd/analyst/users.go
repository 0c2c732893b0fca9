package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "users", usage: "add|list|remove|grant|revoke|token ...  manage users, grants and API tokens", run: runUsers})
}

const usersUsage = `usage:
  analyst users add EMAIL [--role analyst|privileged|admin]
  analyst users list
  analyst users remove EMAIL
  analyst users grant TABLE --user EMAIL
  analyst users revoke TABLE --user EMAIL
  analyst users token create --user EMAIL [--name NAME]
  analyst users token list [--user EMAIL]
  analyst users token revoke ID --user EMAIL
  analyst users login-link --user EMAIL [--url URL | --server URL --token T]`

func runUsers(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return &exitError{code: 2, msg: usersUsage}
	}
	verb, args := args[0], args[1:]
	if verb == "login-link" {
		return runLoginLink(ctx, g, args)
	}
	if verb == "token" {
		if len(args) == 0 {
			return &exitError{code: 2, msg: usersUsage}
		}
		verb, args = "token "+args[0], args[1:]
	}
	fs := g.flags("users " + verb)
	role := fs.String("role", store.RoleAnalyst, "role: analyst, privileged or admin")
	user := fs.String("user", "", "the user's email")
	name := fs.String("name", "cli", "a name for the token")
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(g, openOptions{})
	if err != nil {
		return err
	}
	db, err := store.OpenDB(cfg.Paths.Store)
	if err != nil {
		return err
	}
	defer store.CloseDB(db)
	users, err := store.NewUsers(db)
	if err != nil {
		return err
	}
	need := func(n int) error {
		if len(positional) != n {
			return &exitError{code: 2, msg: usersUsage}
		}
		return nil
	}
	switch verb {
	case "add":
		if err := need(1); err != nil {
			return err
		}
		u, err := users.Add(positional[0], *role)
		if err != nil {
			return err
		}
		fmt.Printf("%s is %s\n", u.Email, u.Role)
	case "list":
		list, err := users.List()
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "EMAIL\tROLE\tDISABLED\tCREATED")
		for _, u := range list {
			fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", u.Email, u.Role, u.Disabled, u.Created.Format("2006-01-02"))
		}
		w.Flush()
	case "remove":
		if err := need(1); err != nil {
			return err
		}
		if err := users.Remove(positional[0]); err != nil {
			return err
		}
		fmt.Printf("removed %s and their tokens\n", positional[0])
	case "grant", "revoke":
		if err := need(1); err != nil {
			return err
		}
		t, ok := cfg.Catalogue.Table(positional[0])
		if !ok || *user == "" {
			return fmt.Errorf("users %s: need a configured TABLE and --user EMAIL", verb)
		}
		if verb == "grant" {
			err = users.Grant(t.Name, *user)
		} else {
			err = users.Revoke(t.Name, *user)
		}
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s %s\n", t.Name, verb+"ed", *user)
	case "token create":
		if *user == "" {
			return &exitError{code: 2, msg: usersUsage}
		}
		plain, tok, err := users.CreateToken(*user, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "token %s for %s (shown once; keep it secret):\n", tok.ID, tok.Email)
		fmt.Println(plain)
	case "token list":
		toks, err := users.Tokens(*user)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tUSER\tNAME\tCREATED\tLAST USED")
		for _, t := range toks {
			last := "never"
			if t.LastUsed != nil {
				last = t.LastUsed.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Email, t.Name, t.Created.Format("2006-01-02"), last)
		}
		w.Flush()
	case "token revoke":
		if err := need(1); err != nil {
			return err
		}
		if *user == "" {
			return &exitError{code: 2, msg: usersUsage}
		}
		if err := users.RevokeToken(*user, positional[0]); err != nil {
			return err
		}
		fmt.Printf("revoked token %s of %s\n", positional[0], *user)
	default:
		return &exitError{code: 2, msg: fmt.Sprintf("unknown users command %q\n%s", strings.TrimSpace(verb), usersUsage)}
	}
	return nil
}

// parseInterleaved parses flags that may come before or after positional arguments.
func parseInterleaved(fs interface {
	Parse([]string) error
	Args() []string
	NArg() int
	Arg(int) string
}, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
