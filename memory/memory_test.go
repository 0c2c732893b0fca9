package memory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/memory"
	"github.com/ai-data-analyst/analyst/store"
)

func TestAnthropicRetriesOverloadsAndRateLimits(t *testing.T) {
	f := newFake(t)
	f.collect = []reply{
		apiErr(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", map[string]string{"retry-after": "0"}),
		apiErr(529, "overloaded_error", "Overloaded", nil),
		apiErr(500, "api_error", "Internal server error", nil),
	}
	a := &memory.Anthropic{BaseURL: f.srv.URL, APIKey: testKey, Backoff: time.Millisecond}
	req := memory.Request{Prompt: "## Existing items\n(none)\n\n## Notes\n\n### User: U1\n```markdown\n- Fiscal year: starts in April\n```\n",
		Name: "knowledge_items", Schema: map[string]any{"type": "object"}}
	raw, err := a.Structured(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"Fiscal year"`) {
		t.Fatalf("answer %s", raw)
	}
	if n, _ := f.calls(); n != 4 {
		t.Fatalf("%d calls, want 4 (three failures retried)", n)
	}

	// retry-after is honoured (capped by MaxWait).
	f.collect = []reply{apiErr(429, "rate_limit_error", "slow down", map[string]string{"retry-after": "0.3"})}
	start := time.Now()
	if _, err := a.Structured(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("retried after %v, retry-after asked for 300ms", d)
	}

	// Gives up after Attempts, with the API's error.
	f.collect = []reply{apiErr(529, "overloaded_error", "Overloaded", nil), apiErr(529, "overloaded_error", "Overloaded", nil),
		apiErr(529, "overloaded_error", "Overloaded", nil), apiErr(529, "overloaded_error", "Overloaded", nil)}
	before, _ := f.calls()
	_, err = a.Structured(context.Background(), req)
	var ae *memory.APIError
	if !errors.As(err, &ae) || ae.Status != 529 || ae.Type != "overloaded_error" {
		t.Fatalf("err = %v", err)
	}
	if n, _ := f.calls(); n-before != 4 {
		t.Fatalf("%d calls, want 4 attempts", n-before)
	}

	// A reached spend limit and a bad request are not retried; the key never shows in errors.
	spend := apiErr(429, "rate_limit_error", "spend limit", nil)
	spend.body = `{"type":"error","error":{"type":"rate_limit_error","message":"spend limit","details":{"error_code":"enforced_spend_limit_reached"}}}`
	for _, rep := range []reply{spend, apiErr(400, "invalid_request_error", "prompt is too long", nil)} {
		f.collect = []reply{rep}
		before, _ := f.calls()
		if _, err := a.Structured(context.Background(), req); err == nil || strings.Contains(err.Error(), testKey) {
			t.Fatalf("err = %v", err)
		}
		if n, _ := f.calls(); n-before != 1 {
			t.Fatalf("%s retried", rep.body)
		}
	}

	// A wrong key is a clear 401.
	bad := &memory.Anthropic{BaseURL: f.srv.URL, APIKey: "wrong", Backoff: time.Millisecond}
	if _, err := bad.Structured(context.Background(), req); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("err = %v", err)
	}

	// An answer cut at max_tokens is ErrTruncated.
	f.collect = []reply{toolReply("knowledge_items", map[string]any{"items": []any{}}, "max_tokens")}
	if _, err := a.Structured(context.Background(), req); !errors.Is(err, memory.ErrTruncated) {
		t.Fatalf("err = %v", err)
	}
}

func TestIncrementalBatching(t *testing.T) {
	e := newEnv(t, memory.Options{MaxBatchBytes: 700})
	pad := strings.Repeat("x", 250)
	for i := 1; i <= 5; i++ {
		e.analyst(fmt.Sprintf("a%d@acme.com", i), fmt.Sprintf("# notes %s\n- Tip %d: use the orders view for revenue\n", pad, i))
	}
	out := e.collect()
	if out.Batches != 3 || out.Users != 5 || out.Created != 5 {
		t.Fatalf("first run %+v, want 3 batches of 2+2+1 users and 5 items", out)
	}
	for i := range 3 {
		notes := e.fake.prompt(i)[strings.Index(e.fake.prompt(i), "## Notes"):]
		if len(notes) > 700+200 {
			t.Fatalf("batch %d sends %d bytes of notes", i, len(notes))
		}
	}
	// Nothing changed: no model call at all.
	out = e.collect()
	if n, _ := e.fake.calls(); n != 3 || out.Skipped == "" {
		t.Fatalf("unchanged notes made calls (%d) or run %+v", n, out)
	}
	// One user changes: one call, carrying only their notes and their existing items.
	e.now = e.now.Add(time.Hour)
	e.notes("a3@acme.com", "- Tip 3: use the orders view for revenue\n- Refunds: subtract the refunds table\n")
	out = e.collect()
	if n, _ := e.fake.calls(); n != 4 || out.Users != 1 || out.Created != 1 {
		t.Fatalf("calls %d, run %+v", n, out)
	}
	p := e.fake.prompt(3)
	if !strings.Contains(p, "Refunds") || strings.Contains(p, "Tip 1:") || strings.Count(p, "### User:") != 1 {
		t.Fatalf("incremental prompt:\n%s", p)
	}
	if !strings.Contains(p, `"title":"Tip 3"`) {
		t.Fatalf("the user's existing item was not sent:\n%s", p)
	}
	if strings.Contains(p, "@acme.com") {
		t.Fatal("e-mail addresses were sent to the model")
	}
}

func TestTruncatedAnswerSplitsTheBatch(t *testing.T) {
	e := newEnv(t, memory.Options{})
	e.analyst("a@acme.com", "- Alpha: first\n")
	e.analyst("b@acme.com", "- Beta: second\n")
	e.fake.collect = []reply{toolReply("knowledge_items", map[string]any{"items": []any{}}, "max_tokens")}
	out := e.collect()
	if out.Batches != 2 || out.Created != 2 || len(out.Failed) != 0 {
		t.Fatalf("run %+v, want the batch split in two", out)
	}
}

func TestIDsStableVotesSurviveAndOnlyGoneSourcesRemove(t *testing.T) {
	e := newEnv(t, memory.Options{})
	e.analyst("ann@acme.com", "- Fiscal year: starts in April\n- Orders dedup: use the latest row per order_id\n")
	e.analyst("bob@acme.com", "- Fiscal year: starts in April\n- Churn: a customer with no order for 90 days\n")
	e.collect()
	items := e.byTitle()
	if got := titles(items); !slices.Equal(got, []string{"Churn", "Fiscal year", "Orders dedup"}) {
		t.Fatalf("items %v", got)
	}
	fy := items["Fiscal year"]
	if !slices.Equal(fy.SourceUsers, []string{"ann@acme.com", "bob@acme.com"}) || !strings.HasPrefix(fy.ID, "km_") || len(fy.ID) != 15 {
		t.Fatalf("fiscal year item %+v", fy)
	}
	if err := e.svc.Vote("carl@acme.com", fy.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Vote("carl@acme.com", items["Orders dedup"].ID, 1); err != nil {
		t.Fatal(err)
	}

	// Ann rewrites her notes: the model reuses the id and omits "Orders dedup" (not in her notes
	// any more); omission never deletes, and the votes stay.
	e.now = e.now.Add(time.Hour)
	e.notes("ann@acme.com", "- Fiscal year: starts in April (Q1 = Apr-Jun)\n")
	e.collect()
	items = e.byTitle()
	if items["Fiscal year"].ID != fy.ID || items["Fiscal year"].Content != "starts in April (Q1 = Apr-Jun)" {
		t.Fatalf("fiscal year after refresh %+v (id was %s)", items["Fiscal year"], fy.ID)
	}
	if _, ok := items["Orders dedup"]; !ok {
		t.Fatal("an item the model omitted was deleted")
	}
	votes, _ := e.mem.UserVotes("carl@acme.com")
	if votes[fy.ID] != 1 || votes[items["Orders dedup"].ID] != 1 {
		t.Fatalf("votes lost: %v", votes)
	}

	// Ann deletes her notes: items only she supported go, shared ones lose her as a source.
	e.now = e.now.Add(time.Hour)
	if err := removeFile(e.svc.NotesPath("ann@acme.com")); err != nil {
		t.Fatal(err)
	}
	out := e.collect()
	items = e.byTitle()
	if _, ok := items["Orders dedup"]; ok || out.Removed != 1 {
		t.Fatalf("item with no source left kept (run %+v)", out)
	}
	if got := items["Fiscal year"].SourceUsers; !slices.Equal(got, []string{"bob@acme.com"}) {
		t.Fatalf("sources %v", got)
	}
	if votes, _ := e.mem.UserVotes("carl@acme.com"); votes[fy.ID] != 1 || len(votes) != 1 {
		t.Fatalf("votes after removal %v", votes)
	}
	if a := e.rec.actions(items["Fiscal year"].ID); !slices.Contains(a, "created by collector") || !slices.Contains(a, "updated by collector") {
		t.Fatalf("audit %v", a)
	}

	// Bob withdraws consent: his notes are never sent again and his items go.
	e.now = e.now.Add(time.Hour)
	e.svc.SetConsent("bob@acme.com", false)
	e.notes("bob@acme.com", "- Secret plan: never to be sent\n")
	before, _ := e.fake.calls()
	e.collect()
	if n, _ := e.fake.calls(); n != before {
		t.Fatal("notes of a user without consent were sent")
	}
	if len(e.byTitle()) != 0 {
		t.Fatalf("items left %v", titles(e.byTitle()))
	}
}

func TestFailedCallsBackOffPerUser(t *testing.T) {
	e := newEnv(t, memory.Options{RetryBase: time.Hour, RetryMax: 3 * time.Hour})
	e.analyst("ann@acme.com", "- Fiscal year: starts in April\n")
	bad := []reply{
		toolReply("knowledge_items", map[string]any{"items": []any{map[string]any{"existing_id": nil, "title": "T", "content": "C",
			"category": "gossip", "tags": []string{"x"}, "source_users": []string{"U1"}}}}, "tool_use"),
		toolReply("knowledge_items", map[string]any{"items": []any{map[string]any{"title": "T", "content": "C"}}}, "tool_use"),
		toolReply("knowledge_items", map[string]any{"answer": "here you go"}, "tool_use"),
		{status: 200, body: `{"id":"msg_01","type":"message","content":[{"type":"text","text":"Sure! {items: [}"}],"stop_reason":"end_turn"}`},
		{status: 200, body: `not json at all`},
	}
	for i, rep := range bad {
		e.fake.collect = []reply{rep}
		e.now = e.now.Add(4 * time.Hour) // past any backoff
		out := e.collect()
		if len(out.Failed) != 1 || len(e.byTitle()) != 0 {
			t.Fatalf("malformed answer %d accepted: %+v", i, out)
		}
	}
	// After a failure the user waits; the wait doubles and is capped.
	prog, _ := e.mem.Progress()
	if p := prog["ann@acme.com"]; p.Failures != 5 || p.Hash != "" || !p.NextAttempt.Equal(e.now.Add(3*time.Hour)) || p.LastError == "" {
		t.Fatalf("progress %+v", p)
	}
	calls, _ := e.fake.calls()
	e.now = e.now.Add(time.Hour)
	if out := e.collect(); out.Deferred != 1 {
		t.Fatalf("run during backoff %+v", out)
	}
	if n, _ := e.fake.calls(); n != calls {
		t.Fatal("a run during the backoff called the model")
	}
	// 529 overloads on every attempt: the same backoff, no tight loop.
	e.now = e.now.Add(3 * time.Hour)
	e.fake.collect = []reply{apiErr(529, "overloaded_error", "Overloaded", nil), apiErr(529, "overloaded_error", "Overloaded", nil),
		apiErr(529, "overloaded_error", "Overloaded", nil), apiErr(529, "overloaded_error", "Overloaded", nil)}
	if out := e.collect(); len(out.Failed) != 1 {
		t.Fatalf("run %+v", out)
	}
	// Then it works, and the failures are forgotten.
	e.now = e.now.Add(4 * time.Hour)
	if out := e.collect(); out.Created != 1 {
		t.Fatalf("run %+v", out)
	}
	prog, _ = e.mem.Progress()
	if p := prog["ann@acme.com"]; p.Failures != 0 || p.Hash == "" {
		t.Fatalf("progress after success %+v", p)
	}
}

func TestSensitivityCheckFailsClosed(t *testing.T) {
	e := newEnv(t, memory.Options{})
	e.fake.unsafe = "Layoffs"
	e.fake.verdicts = []reply{
		apiErr(500, "api_error", "boom", nil), apiErr(500, "api_error", "boom", nil),
		apiErr(500, "api_error", "boom", nil), apiErr(500, "api_error", "boom", nil), // the first LLM check errs
		toolReply("sensitivity_verdict", map[string]any{"verdict": "fine"}, "tool_use"), // the second is unreadable
	}
	e.analyst("ann@acme.com", strings.Join([]string{
		"- Errors check: retry the export when it fails", // LLM check errs
		"- Garbled check: join on customer_id",           // LLM answer unreadable
		"- Layoffs: the Q3 layoffs list is in the hr folder",
		"- AWS access: use key AKIAIOSFODNN7EXAMPLE for the bucket",
		"- Ask Jane: jane.doe@acme.com knows the schema",
		"- Warehouse host: connect to 10.20.30.40 directly",
		"- Metabase: dashboards live on metabase.corp",
		"- Intranet: see wiki.acme.com for the glossary",
		"- Private key: -----BEGIN RSA PRIVATE KEY----- MIIE",
		"- Revenue: net of VAT and refunds",
	}, "\n")+"\n")
	out := e.collect()
	items := e.byTitle()
	if out.Created != 1 || out.Held != 9 {
		t.Fatalf("run %+v", out)
	}
	for title, it := range items {
		want := store.MemoryPending
		if title == "Revenue" {
			want = store.MemoryPublished
		}
		if it.Status != want || (want == store.MemoryPending) == (it.Hold == "") {
			t.Errorf("%s: status %s hold %q", title, it.Status, it.Hold)
		}
	}
	if _, checks := e.fake.calls(); checks != 4+1+2 { // 4 tries of the erring one, the garbled, Layoffs, Revenue
		t.Fatalf("%d sensitivity calls: deterministic hits must not reach the model", checks)
	}
	// Pending items are invisible to analysts, not votable, never rules.
	page, err := e.svc.List("bob@acme.com", false, memory.Query{Page: 1, PerPage: 20})
	if err != nil || page.Total != 1 || page.Items[0].Title != "Revenue" {
		t.Fatalf("analyst list %+v %v", page, err)
	}
	if _, err := e.svc.List("bob@acme.com", false, memory.Query{Page: 1, PerPage: 20, Status: "pending"}); !errors.Is(err, memory.ErrInvalid) {
		t.Fatalf("analyst listed pending items: %v", err)
	}
	if err := e.svc.Vote("bob@acme.com", items["Layoffs"].ID, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("vote on a pending item: %v", err)
	}
	// An admin approves one after review; it becomes votable and the approval is audited.
	if _, err := e.svc.Approve(items["Errors check"].ID, "boss@acme.com"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Vote("bob@acme.com", items["Errors check"].ID, 1); err != nil {
		t.Fatal(err)
	}
	if a := e.rec.actions(items["Errors check"].ID); !slices.Equal(a, []string{"held by collector", "approved by boss@acme.com"}) {
		t.Fatalf("audit %v", a)
	}
}

func TestGovernanceAndRules(t *testing.T) {
	e := newEnv(t, memory.Options{})
	e.analyst("ann@acme.com", "- Fiscal year: starts in April\n- Churn: no order for 90 days\n- Revenue: net of VAT\n")
	e.collect()
	items := e.byTitle()
	fy, churn, rev := items["Fiscal year"], items["Churn"], items["Revenue"]

	e.svc.Vote("bob@acme.com", fy.ID, 1)
	e.svc.Vote("bob@acme.com", churn.ID, -1)
	e.svc.Vote("carl@acme.com", churn.ID, -1)
	names := func(email string) []string {
		rules, err := e.svc.Rules(email)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rules {
			out = append(out, r.Name)
		}
		return out
	}
	if got := names("bob@acme.com"); !slices.Equal(got, []string{fy.ID + ".md"}) {
		t.Fatalf("bob's rules %v", got)
	}
	rule, ok, _ := e.svc.Rule("bob@acme.com", fy.ID+".md")
	if !ok || !strings.HasPrefix(string(rule.Content), "# Fiscal year\n\n**Category:** data_analysis\n**Tags:** orders, sql\n") ||
		!strings.Contains(string(rule.Content), "*Source: Corporate Memory (ID: "+fy.ID+")*") {
		t.Fatalf("rule file:\n%s", rule.Content)
	}

	// Mandatory items reach everyone; rejected ones no one, and they stay rejected.
	if _, err := e.svc.SetMandatory(rev.ID, "boss@acme.com", true); err != nil {
		t.Fatal(err)
	}
	if got := names("dora@acme.com"); !slices.Equal(got, []string{rev.ID + ".md"}) {
		t.Fatalf("dora's rules %v", got)
	}
	if _, err := e.svc.Reject(fy.ID, "boss@acme.com", "wrong"); err != nil {
		t.Fatal(err)
	}
	if got := names("bob@acme.com"); !slices.Equal(got, []string{rev.ID + ".md"}) {
		t.Fatalf("bob's rules after reject %v", got)
	}
	// An admin's edit sticks even when the collector sees the notes again.
	title := "Fiscal year start"
	if _, err := e.svc.EditItem(churn.ID, "boss@acme.com", memory.Edit{Title: &title}); err != nil {
		t.Fatal(err)
	}
	bad := "gossip"
	if _, err := e.svc.EditItem(churn.ID, "boss@acme.com", memory.Edit{Category: &bad}); !errors.Is(err, memory.ErrInvalid) {
		t.Fatalf("bad category accepted: %v", err)
	}
	e.now = e.now.Add(time.Hour)
	e.notes("ann@acme.com", "- Fiscal year: starts in April\n- Churn: no order for 90 days\n- Revenue: net of VAT\n\nmore\n")
	e.collect()
	if it, _ := e.mem.Item(churn.ID); it.Title != title {
		t.Fatalf("admin edit overwritten: %+v", it)
	}
	if it, _ := e.mem.Item(fy.ID); it.Status != store.MemoryRejected {
		t.Fatalf("rejected item came back: %+v", it)
	}
	for id, want := range map[string][]string{
		rev.ID:   {"created by collector", "mandatory by boss@acme.com"},
		fy.ID:    {"created by collector", "rejected by boss@acme.com"},
		churn.ID: {"created by collector", "edited by boss@acme.com"},
	} {
		if got := e.rec.actions(id); !slices.Equal(got, want) {
			t.Errorf("audit of %s: %v, want %v", id, got, want)
		}
	}

	// Lists: score sort, search, category, my rules, paging validation.
	page, _ := e.svc.List("bob@acme.com", false, memory.Query{Page: 1, PerPage: 10})
	if len(page.Items) != 2 || page.Items[0].ID != rev.ID || page.Items[1].Score != -2 {
		t.Fatalf("score order %+v", page.Items)
	}
	page, _ = e.svc.List("bob@acme.com", false, memory.Query{Page: 1, PerPage: 10, Search: "VAT"})
	if page.Total != 1 || page.Items[0].ID != rev.ID {
		t.Fatalf("search %+v", page)
	}
	page, _ = e.svc.List("bob@acme.com", false, memory.Query{Page: 1, PerPage: 10, MyRules: true})
	if page.Total != 1 || !page.Items[0].InMyRules {
		t.Fatalf("my rules %+v", page)
	}
	page, _ = e.svc.List("bob@acme.com", false, memory.Query{Page: 2, PerPage: 1})
	if page.Total != 2 || len(page.Items) != 1 || page.Items[0].ID != churn.ID {
		t.Fatalf("page 2 %+v", page)
	}
	for _, q := range []memory.Query{{Page: 0, PerPage: 10}, {Page: 1, PerPage: 101}, {Page: 1, PerPage: 10, Sort: "random"}, {Page: 1, PerPage: 10, Category: "misc"}} {
		if _, err := e.svc.List("bob@acme.com", false, q); !errors.Is(err, memory.ErrInvalid) {
			t.Errorf("query %+v accepted", q)
		}
	}
	st, err := e.svc.Stats("bob@acme.com", true)
	if err != nil || st.KnowledgeCount != 2 || st.YourVotes != 1 || st.YourRules != 1 || st.Mandatory != 1 || *st.Pending != 0 || st.LastCollection == nil {
		t.Fatalf("stats %+v %v", st, err)
	}
	if err := e.svc.Vote("bob@acme.com", "km_nosuchitem0", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("vote on unknown item: %v", err)
	}
	if err := e.svc.Vote("bob@acme.com", rev.ID, 2); !errors.Is(err, memory.ErrInvalid) {
		t.Fatalf("vote 2: %v", err)
	}
}
