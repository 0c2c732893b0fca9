package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/handlers"
	"github.com/ai-data-analyst/analyst/notify"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// TestSyncRunsScriptAndDeliversOnceOnBothChannels: a table is synced, the script that depends
// on it runs, and its notification arrives on Telegram and on the desktop exactly once, also
// when the publication is handled again; a second sync within the cooldown sends nothing.
func TestSyncRunsScriptAndDeliversOnceOnBothChannels(t *testing.T) {
	f := newFixture(t)
	log, err := pipeline.NewBoltPubSub(f.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	runs, err := store.NewRuns(f.db)
	if err != nil {
		t.Fatal(err)
	}
	env := handlers.NewEnv(f.cfg, runs, nil)
	env.Scripts = f.svc
	r, err := pipeline.NewRouter(log, pipeline.RouterConfig{MaxRetries: 1, InitialInterval: 10 * time.Millisecond, OnStage: env.TrackStage})
	if err != nil {
		t.Fatal(err)
	}
	handlers.Register(r, env)
	f.svc.Register(r)
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	<-r.Running()
	t.Cleanup(func() { cancel(); r.Close() })

	bot := newFakeBot(t)
	tg := newBot(f, bot)
	desk, wsURL := newDesktop(t, f)
	f.svc.AddChannel(tg)
	f.svc.AddChannel(desk)
	code, _ := f.svc.State.NewTelegramCode(555, time.Now())
	if _, err := f.svc.State.VerifyTelegramCode("ann@example.com", code, time.Now()); err != nil {
		t.Fatal(err)
	}
	app := dial(t, wsURL)
	if m := app.auth(tokenOf(t, must(desk.Authorize("ann@example.com")))); m["type"] != "auth_ok" {
		t.Fatal(m)
	}

	put := func(user, name, body string) {
		if _, err := f.svc.Put(user, name, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	put("ann@example.com", "orders_alert.sh", "# depends: orders\n"+
		`echo "{\"notify\": true, \"title\": \"Orders_eu updated\", \"message\": \"table $ANALYST_TABLE via $ANALYST_TRIGGER\", \"cooldown\": \"1h\"}"`)
	// ann may not see salaries: her script on it never runs.
	put("ann@example.com", "salaries.sh", "# depends: salaries\necho '{\"notify\": true, \"title\": \"leak\"}'")
	put("ann@example.com", "broken.sh", "# depends: orders\necho 'not json'")

	sync := func() string {
		id, err := handlers.RequestSync(r.Publisher(), runs, []string{"orders", "salaries"}, pipeline.TriggerManual, "test", false)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	start := time.Now()
	runID := sync()
	bot.waitSent(t, "sendMessage", 1)
	frame := app.next(10 * time.Second)
	t.Logf("sync to Telegram: %s", time.Since(start).Round(time.Millisecond))
	msgs := bot.waitSent(t, "sendMessage", 2) // the odd "_" fails as Markdown; sent again as plain text
	if got := msgs[1].Fields["text"]; got != "*Orders_eu updated*\ntable orders via table" || msgs[1].Fields["parse_mode"] != nil {
		t.Fatalf("telegram text %v", msgs[1].Fields)
	}
	if frame["type"] != "notification" || frame["title"] != "Orders_eu updated" || frame["script"] != "orders_alert.sh" {
		t.Fatalf("desktop frame %v", frame)
	}
	app.send(map[string]string{"type": "ack", "id": frame["id"].(string)})

	// The publication is handled again (a redelivery): nothing new runs or arrives.
	if _, err := f.svc.QueueForTable(runID, "orders"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		st, _ := f.svc.State.Script("ann@example.com", "broken.sh")
		return st.LastResult == notify.ResultError
	})
	time.Sleep(300 * time.Millisecond)
	if m := app.next(200 * time.Millisecond); m != nil {
		t.Fatalf("second desktop frame: %v", m)
	}
	if n := len(bot.sent("sendMessage")) + len(bot.sent("sendPhoto")); n != 2 { // Markdown try + plain fallback
		t.Fatalf("telegram calls = %d: %+v", n, bot.sent("sendMessage"))
	}

	inbox, _ := f.svc.State.Inbox("ann@example.com", 10)
	if len(inbox) != 1 || inbox[0].Channels["telegram"] != "sent" || inbox[0].Channels["desktop"] != "acknowledged" && inbox[0].Channels["desktop"] != "delivered" {
		t.Fatalf("inbox: %+v", inbox)
	}
	broken, _ := f.svc.State.Script("ann@example.com", "broken.sh")
	if !strings.Contains(broken.LastError, "not one JSON object") {
		t.Fatalf("broken script state: %+v", broken)
	}
	if st, _ := f.svc.State.Script("ann@example.com", "salaries.sh"); !st.LastRun.IsZero() {
		t.Fatalf("a script on a table its owner may not see ran: %+v", st)
	}

	// Another sync within the cooldown: the script runs, but nothing is sent.
	sync()
	waitFor(t, func() bool {
		st, _ := f.svc.State.Script("ann@example.com", "orders_alert.sh")
		return st.LastResult == notify.ResultCooldown
	})
	if m := app.next(300 * time.Millisecond); m != nil {
		t.Fatalf("desktop frame inside the cooldown: %v", m)
	}
	if inbox, _ := f.svc.State.Inbox("ann@example.com", 10); len(inbox) != 1 {
		t.Fatalf("inbox after cooldown run: %d", len(inbox))
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}
