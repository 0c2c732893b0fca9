package notify_test

import (
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/access"
	"github.com/ai-data-analyst/analyst/config"
	_ "github.com/ai-data-analyst/analyst/connectors/csv"
	"github.com/ai-data-analyst/analyst/internal/testenv"
	"github.com/ai-data-analyst/analyst/notify"
	"github.com/ai-data-analyst/analyst/store"
)

// instance writes a CSV-sourced instance with a public table (orders) and a private one
// (salaries, in a private folder).
func instance(t *testing.T) *config.Config {
	t.Helper()
	return testenv.Instance(t, map[string]string{
		"config/instance.yaml": `instance: {name: Notify test}
data_source:
  type: csv
  csv: {path: source}
access:
  private_folders: [people]
`,
		"docs/data_description.md": "# Tables\n\n```yaml\n" + `tables:
  - id: orders
    name: orders
    folder: sales
    description: Orders
    primary_key: id
    sync_strategy: full_refresh
    csv: {path: orders.csv}
  - id: salaries
    name: salaries
    folder: people
    description: Salaries
    primary_key: id
    sync_strategy: full_refresh
    csv: {path: salaries.csv}
` + "```\n",
		"source/orders.csv":   "id,amount\n1,10.5\n2,20.25\n3,4\n",
		"source/salaries.csv": "id,salary\n1,1000\n",
	})
}

type fixture struct {
	cfg   *config.Config
	db    *bolt.DB
	users *store.Users
	svc   *notify.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := instance(t)
	db := testenv.OpenStore(t, cfg.Paths.Store)
	users, err := store.NewUsers(db)
	if err != nil {
		t.Fatal(err)
	}
	for email, role := range map[string]string{"ann@example.com": store.RoleAnalyst, "pat@example.com": store.RolePrivileged} {
		if _, err := users.Add(email, role); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := notify.New(notify.Options{Config: cfg, DB: db, Users: users, Policy: &access.Policy{Config: cfg, Users: users},
		Runner: &notify.Runner{TempRoot: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{cfg: cfg, db: db, users: users, svc: svc}
}
