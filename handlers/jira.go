package handlers

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	bolt "go.etcd.io/bbolt"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors/jira"
	"github.com/ai-data-analyst/analyst/pipeline"
)

// The Jira stages (also their consumer groups).
//
//	jira.webhook.received -> [jira-fetch] -> raw JSON -> jira.issue.fetched
//	  -> [jira-write] -> data/parquet/jira/<table>/<YYYY-MM>.parquet -> table.converted -> ...
//
// jira-fetch runs many issues at once but one message per issue at a time (the message key is
// the issue), so two fetches of one issue never race to write its raw file.
//
// jira-write is keyed by partition, "jira/<YYYY-MM>": the dispatcher never has two messages of
// one key in flight, so the in-flight message is the lease on that month's six files, granted
// when the message is handed out and released by its ack. Changes waiting for a month are
// coalesced: the fetch stage marks each written issue as pending for its month, and the writer
// takes every pending issue of the month into one rewrite; a later message whose issues were
// all taken is acked without work. A crash between the start and the end of a rewrite leaves
// its message unacked: at start the pending set is read back from the log, and the month is
// written again from the raw JSON (files are replaced atomically, so readers never see a
// partial file, only possibly some tables of the month ahead of others until the repair).
const (
	StageJiraFetch = "jira-fetch"
	StageJiraWrite = "jira-write"
)

// Events the server queues itself; Jira's own carry its webhookEvent name.
const (
	JiraIssueDeleted     = "jira:issue_deleted"  // the only event that deletes
	JiraEventBackfill    = "analyst:backfill"    // fetch the issue, as any webhook does
	JiraEventVerify      = "analyst:verify"      // fetch; an issue Jira no longer has is deleted
	JiraEventRetransform = "analyst:retransform" // write the raw issue into Parquet again
	JiraEventSLA         = "analyst:sla_poll"    // refresh SLA and status fields only
)

// metaJiraIssue keys jira-fetch's messages by issue.
const metaJiraIssue = "jira_issue"

// keyPartition is a raw issue's month as the server placed it (created may be missing).
const keyPartition = "_partition"

// JiraWebhookReceived asks for one issue to be brought up to date.
type JiraWebhookReceived struct {
	pipeline.Header
	Event      string `json:"event"`              // webhookEvent or one of the analyst: events
	Issue      string `json:"issue"`              // key or id
	IssueID    string `json:"issue_id,omitempty"` // when the webhook carried it
	FromKey    string `json:"from_key,omitempty"` // the old key of a moved issue (changelog "Key")
	DeliveryID string `json:"delivery_id,omitempty"`
	Timestamp  int64  `json:"timestamp,omitempty"` // Jira's, epoch ms
}

func (JiraWebhookReceived) Topic() string { return pipeline.TopicJiraWebhook }

// JiraIssueFetched says the raw files of Keys changed: their rows in Month are rewritten.
type JiraIssueFetched struct {
	pipeline.Header
	Month string   `json:"month"`
	Keys  []string `json:"keys"`
	Epoch string   `json:"epoch"` // the process that marked them pending
}

func (JiraIssueFetched) Topic() string { return pipeline.TopicJiraIssueFetched }

var (
	bucketJiraIDs        = []byte("jira.ids")        // issue id -> key
	bucketJiraDeliveries = []byte("jira.deliveries") // X-Atlassian-Webhook-Identifier -> unix seconds
)

// Errors of the webhook intake.
var (
	ErrJiraNotConfigured = errors.New("jira is not configured (jira.base_url or domain, email and api_token)")
	ErrJiraBadPayload    = errors.New("bad jira webhook payload")
)

// JiraOptions are what the Jira stages work with.
type JiraOptions struct {
	Config *config.Config
	DB     *bolt.DB
	// Log, when set, is read at start for partition writes that were pending at a crash.
	Log    *pipeline.BoltPubSub
	Client *jira.Client // default: from the jira block
	Logger *slog.Logger
	// AttachmentLimit skips larger attachments (default 50 MiB).
	AttachmentLimit int64
	// FetchConcurrency is how many issues are fetched at once (default 64): a fetch mostly
	// waits for Jira.
	FetchConcurrency int
	// AnnounceEvery is the shortest time between two table.converted events of one Jira table
	// (default 30 s): profiling reads the whole table, so a burst of webhooks is announced
	// once when it settles, not once per rewrite.
	AnnounceEvery time.Duration
	// PartitionCache is how many bytes of month files the writer keeps decoded in memory
	// (default 512 MiB): a hot month is then only filtered and encoded on each rewrite.
	PartitionCache int64
	Now            func() time.Time
}

// Jira runs the Jira stages, the webhook intake and the periodic jobs.
type Jira struct {
	opts      JiraOptions
	client    *jira.Client
	raw       jira.RawStore
	attachDir string
	parquet   string
	writer    *jira.PartitionWriter
	tr        *jira.Transformer
	log       *slog.Logger
	pub       message.Publisher
	epoch     string

	mu        sync.Mutex
	pending   map[string]map[string]bool // month -> issue keys written to raw, not yet to Parquet
	recovered bool                       // pending was read back from the log at start
	staged    map[string]stagedRows      // issue key -> its rows as its raw file was last written

	annMu     sync.Mutex
	announced map[string]time.Time                // table -> last table.converted
	held      map[string]*pipeline.TableConverted // table -> changes not announced yet
}

// NewJira prepares the Jira stages.
func NewJira(o JiraOptions) (*Jira, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AttachmentLimit == 0 {
		o.AttachmentLimit = 50 << 20
	}
	if o.FetchConcurrency == 0 {
		o.FetchConcurrency = 64
	}
	if o.AnnounceEvery == 0 {
		o.AnnounceEvery = 30 * time.Second
	}
	if o.PartitionCache == 0 {
		o.PartitionCache = 512 << 20
	}
	jc := o.Config.Instance.Jira
	if o.Client == nil {
		o.Client = jira.NewClient(jc, o.Logger)
	}
	domain := jc.Domain
	if domain == "" {
		domain = strings.TrimPrefix(strings.TrimPrefix(jc.BaseURL, "https://"), "http://")
	}
	rawDir := filepath.Join(o.Config.Paths.Raw, "jira")
	j := &Jira{
		opts: o, client: o.Client, log: o.Logger.With("source", "jira"),
		raw:       jira.RawStore{Dir: filepath.Join(rawDir, "issues")},
		attachDir: filepath.Join(rawDir, "attachments"),
		parquet:   filepath.Join(o.Config.Paths.Parquet, "jira"),
		epoch:     watermill.NewULID(),
		pending:   map[string]map[string]bool{},
		staged:    map[string]stagedRows{},
		announced: map[string]time.Time{},
		held:      map[string]*pipeline.TableConverted{},
	}
	j.tr = jira.NewTransformer(domain, jc.CustomFields, j.attachDir)
	j.writer = &jira.PartitionWriter{Dir: j.parquet, CacheBytes: o.PartitionCache}
	err := o.DB.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketJiraIDs, bucketJiraDeliveries} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return j, err
}

// Configured reports whether the Jira API is set up.
func (j *Jira) Configured() bool { return j.client.Configured() }

// ParquetDir is data/parquet/jira.
func (j *Jira) ParquetDir() string { return j.parquet }

// RawDir is data/raw/jira.
func (j *Jira) RawDir() string { return filepath.Dir(j.raw.Dir) }

// Register adds the Jira stages to the router, after repairing what a crash left behind:
// temp files are removed and the partition writes still in the log become pending again.
func (j *Jira) Register(r *pipeline.Router) error {
	j.pub = r.Publisher()
	if err := j.recover(); err != nil {
		return err
	}
	r.HandleWith(StageJiraFetch, pipeline.TopicJiraWebhook, pipeline.SubscriberOptions{
		Concurrency: j.opts.FetchConcurrency,
		Key:         func(m message.Metadata) string { return m.Get(metaJiraIssue) },
	}, j.fetch)
	// Two months at once; the six tables of a month are written in parallel.
	r.HandleWith(StageJiraWrite, pipeline.TopicJiraIssueFetched, pipeline.SubscriberOptions{Concurrency: 2}, j.write)
	// Changes held back before a restart were not announced: announce every table once.
	for i, t := range j.tr.Tables() {
		if _, err := os.Stat(filepath.Join(j.parquet, t.Name)); err != nil {
			continue
		}
		if name, ok := j.catalogueName(t.Name); ok {
			j.held[t.Name] = &pipeline.TableConverted{Path: "jira/" + t.Name, Columns: len(j.tr.Tables()[i].Columns), Source: "jira"}
			pipeline.Stamp(&j.held[t.Name].Header, "", name)
		}
	}
	if len(j.held) > 0 {
		time.AfterFunc(time.Second, j.flushAnnouncements)
	}
	return nil
}

// catalogueName is the catalogue table a Jira table is published as: a table in folder jira
// named <table> or jira_<table>. Jira tables outside the catalogue are written but not
// announced (nothing would profile or list them).
func (j *Jira) catalogueName(table string) (string, bool) {
	for _, t := range j.opts.Config.Catalogue.Tables {
		if t.Folder == "jira" && (t.Name == table || t.Name == "jira_"+table) {
			return t.Name, true
		}
	}
	return "", false
}

// announce turns a rewrite's changed tables into table.converted events for the rest of the
// chain, at most one per table per AnnounceEvery; the others are held and sent when due.
func (j *Jira) announce(stats []jira.TableStats, month string) []pipeline.Event {
	j.annMu.Lock()
	defer j.annMu.Unlock()
	now := j.opts.Now()
	runID := "jira-" + watermill.NewULID()
	var events []pipeline.Event
	for i, st := range stats {
		name, ok := j.catalogueName(st.Table)
		if !st.Changed || !ok {
			continue
		}
		ev := j.held[st.Table]
		if ev == nil {
			ev = &pipeline.TableConverted{Path: "jira/" + st.Table, Columns: len(j.tr.Tables()[i].Columns), Source: "jira"}
		}
		ev.Rows, ev.Bytes = st.Rows, st.Bytes
		if !slices.Contains(ev.Partitions, month) {
			ev.Partitions = append(ev.Partitions, month)
		}
		pipeline.Stamp(&ev.Header, runID, name)
		if wait := j.announced[st.Table].Add(j.opts.AnnounceEvery).Sub(now); wait > 0 {
			if j.held[st.Table] == nil {
				time.AfterFunc(wait, j.flushAnnouncements)
			}
			j.held[st.Table] = ev
			continue
		}
		delete(j.held, st.Table)
		j.announced[st.Table] = now
		events = append(events, *ev)
	}
	return events
}

// flushAnnouncements publishes the held table.converted events that are due.
func (j *Jira) flushAnnouncements() {
	j.annMu.Lock()
	defer j.annMu.Unlock()
	now := j.opts.Now()
	runID := "jira-" + watermill.NewULID()
	for table, ev := range j.held {
		if wait := j.announced[table].Add(j.opts.AnnounceEvery).Sub(now); wait > 0 {
			time.AfterFunc(wait, j.flushAnnouncements)
			continue
		}
		pipeline.Stamp(&ev.Header, runID, ev.Table)
		if err := pipeline.Publish(j.pub, *ev); errors.Is(err, pipeline.ErrClosed) {
			return
		} else if err != nil {
			j.log.Error("jira: cannot announce table", "table", ev.Table, "error", err)
			time.AfterFunc(j.opts.AnnounceEvery, j.flushAnnouncements)
			continue
		}
		delete(j.held, table)
		j.announced[table] = now
	}
}

func (j *Jira) recover() error {
	for _, pattern := range []string{filepath.Join(j.parquet, "*", ".*.parquet.tmp-*"), filepath.Join(j.raw.Dir, ".*.json.tmp-*")} {
		leftovers, _ := filepath.Glob(pattern)
		for _, f := range leftovers {
			os.Remove(f)
		}
	}
	if j.opts.Log == nil {
		return nil
	}
	off, err := j.opts.Log.Offset(StageJiraWrite, pipeline.TopicJiraIssueFetched)
	if err != nil {
		return err
	}
	n := 0
	for {
		recs, err := j.opts.Log.Read(pipeline.TopicJiraIssueFetched, off, 10_000)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			var ev JiraIssueFetched
			if pipeline.Decode(message.NewMessage(rec.UUID, rec.Payload), &ev) == nil && jira.ValidMonth(ev.Month) {
				j.markPending(ev.Month, ev.Keys)
				n++
			}
			off = rec.Seq
		}
		if len(recs) == 0 {
			break
		}
	}
	j.recovered = true
	if n > 0 {
		j.log.Info("jira: partition writes pending since the last run", "messages", n)
	}
	return nil
}

func (j *Jira) markPending(month string, keys []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := j.pending[month]
	if p == nil {
		p = map[string]bool{}
		j.pending[month] = p
	}
	for _, k := range keys {
		p[k] = true
	}
}

// takePending returns the keys to rewrite for a message: all pending in its month plus its
// own; skip when an earlier rewrite already took its keys.
func (j *Jira) takePending(in JiraIssueFetched) (keys []string, skip bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := j.pending[in.Month]
	if in.Epoch == j.epoch || j.recovered {
		taken := true
		for _, k := range in.Keys {
			if p[k] {
				taken = false
			}
		}
		if taken {
			return nil, true
		}
	}
	set := map[string]bool{}
	for k := range p {
		set[k] = true
	}
	for _, k := range in.Keys {
		set[k] = true
	}
	delete(j.pending, in.Month)
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, false
}

// Accepted is what the intake did with a webhook.
type Accepted struct {
	Event     string   `json:"event"`
	Issues    []string `json:"issues"`
	Duplicate bool     `json:"duplicate,omitempty"`
}

// Accept puts a verified webhook into the event log and returns once it is durable. A delivery
// id seen before is acknowledged without queuing it again. A payload that names no issue is
// accepted with no issues.
func (j *Jira) Accept(deliveryID string, body map[string]any) (Accepted, error) {
	if !j.Configured() {
		return Accepted{}, ErrJiraNotConfigured
	}
	event, _ := body["webhookEvent"].(string)
	acc := Accepted{Event: event}
	refs, err := issueRefs(body)
	if err != nil {
		return acc, err
	}
	acc.Issues = refs
	if deliveryID != "" {
		seen, err := j.seen(deliveryID)
		if err != nil {
			return acc, err
		}
		if seen {
			acc.Duplicate = true
			return acc, nil
		}
	}
	if len(refs) == 0 {
		return acc, nil
	}
	ev := JiraWebhookReceived{Event: event, DeliveryID: deliveryID}
	ev.IssueID, _ = jira.Field(body, "issue", "id").(string)
	switch ts := body["timestamp"].(type) {
	case json.Number:
		ev.Timestamp, _ = ts.Int64()
	case float64:
		ev.Timestamp = int64(ts)
	}
	for _, it := range jira.List(jira.Field(body, "changelog", "items")) {
		if jira.Field(it, "field") == "Key" {
			ev.FromKey, _ = jira.Field(it, "fromString").(string)
		}
	}
	if err := j.enqueue(ev, refs...); err != nil {
		return acc, err
	}
	if deliveryID != "" {
		err := j.opts.DB.Batch(func(tx *bolt.Tx) error {
			v := binary.BigEndian.AppendUint64(nil, uint64(j.opts.Now().Unix()))
			return tx.Bucket(bucketJiraDeliveries).Put([]byte(deliveryID), v)
		})
		if err != nil { // the event is in; a redelivery would only fetch again
			j.log.Warn("jira: cannot record webhook delivery", "delivery", deliveryID, "error", err)
		}
	}
	return acc, nil
}

// Enqueue queues one of the server's own events (backfill, verify, retransform, SLA poll) for
// each key.
func (j *Jira) Enqueue(event string, keys ...string) error {
	return j.enqueue(JiraWebhookReceived{Event: event}, keys...)
}

func (j *Jira) enqueue(ev JiraWebhookReceived, refs ...string) error {
	if j.pub == nil {
		return errors.New("jira: stages are not registered")
	}
	msgs := make([]*message.Message, 0, len(refs))
	for _, ref := range refs {
		ev.Issue = ref
		pipeline.Stamp(&ev.Header, "", "jira")
		msg, err := pipeline.NewMessage(ev)
		if err != nil {
			return err
		}
		msg.Metadata.Set(metaJiraIssue, ref)
		msgs = append(msgs, msg)
	}
	if len(msgs) == 0 {
		return nil
	}
	return j.pub.Publish(pipeline.TopicJiraWebhook, msgs...)
}

func (j *Jira) seen(deliveryID string) (bool, error) {
	var ok bool
	err := j.opts.DB.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketJiraDeliveries).Get([]byte(deliveryID)) != nil
		return nil
	})
	return ok, err
}

// PruneDeliveries forgets webhook delivery ids older than cutoff.
func (j *Jira) PruneDeliveries(cutoff time.Time) error {
	return j.opts.DB.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJiraDeliveries).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < cutoff.Unix() {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// issueRefs finds the issues a webhook is about: the issue (key, else id), the reference's
// top-level issue_key, a worklog's issue, both ends of an issue link.
func issueRefs(body map[string]any) ([]string, error) {
	var refs []string
	add := func(v any) {
		if s := fmt.Sprint(v); v != nil && s != "" {
			refs = append(refs, s)
		}
	}
	switch {
	case jira.Field(body, "issue", "key") != nil:
		add(jira.Field(body, "issue", "key"))
	case jira.Field(body, "issue", "id") != nil:
		add(jira.Field(body, "issue", "id"))
	case body["issue_key"] != nil:
		add(body["issue_key"])
	}
	if len(refs) == 0 {
		add(jira.Field(body, "worklog", "issueId"))
		add(jira.Field(body, "issueLink", "sourceIssueId"))
		add(jira.Field(body, "issueLink", "destinationIssueId"))
	}
	for _, r := range refs {
		if !jira.ValidKey(r) && !isDigits(r) {
			return nil, fmt.Errorf("%w: %q is not an issue key or id", ErrJiraBadPayload, r)
		}
	}
	return refs, nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != "" && len(s) < 20
}

// fetch brings one issue's raw file up to date and says which month partitions to rewrite.
func (j *Jira) fetch(msg *message.Message) ([]pipeline.Event, error) {
	var in JiraWebhookReceived
	if err := pipeline.Decode(msg, &in); err != nil {
		return nil, pipeline.Permanent(err)
	}
	ctx := msg.Context()
	switch in.Event {
	case JiraIssueDeleted:
		return j.deleteIssue(in.Issue, in.IssueID)
	case JiraEventRetransform:
		return j.retransform(in.Issue)
	case JiraEventSLA:
		return j.pollSLA(ctx, in.Issue)
	default:
		return j.refresh(ctx, in)
	}
}

func (j *Jira) refresh(ctx context.Context, in JiraWebhookReceived) ([]pipeline.Event, error) {
	// The three calls go out together: a fetch costs one round trip to Jira, not three.
	var (
		issue           jira.Issue
		links           []any
		sla             map[string]any
		err, lerr, serr error
		wg              sync.WaitGroup
	)
	wg.Go(func() { issue, err = j.client.Issue(ctx, in.Issue) })
	wg.Go(func() { links, lerr = j.client.RemoteLinks(ctx, in.Issue) })
	if j.client.SLAConfigured() {
		wg.Go(func() { sla, serr = j.client.SLA(ctx, in.Issue, jira.SLAFields) })
	}
	wg.Wait()
	if errors.Is(err, jira.ErrNotFound) {
		if in.Event == JiraEventVerify {
			return j.deleteIssue(in.Issue, in.IssueID)
		}
		j.log.Warn("jira: issue not found (deleted, or the token may not see it); nothing changed", "issue", in.Issue, "event", in.Event)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	key, _ := issue["key"].(string)
	if !jira.ValidKey(key) {
		return nil, pipeline.Permanent(fmt.Errorf("jira: issue %s: reply has a bad key %q", in.Issue, key))
	}
	id, _ := issue["id"].(string)
	prev, err := j.raw.Read(key)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		j.log.Warn("jira: previous raw file unreadable; replacing it", "issue", key, "error", err)
	}
	if lerr == nil {
		issue[jira.KeyRemoteLinks] = links
	} else {
		// Keep the links we had: a failed fetch must not wipe them.
		j.log.Warn("jira: remote links not fetched; keeping the previous ones", "issue", key, "error", lerr)
		issue[jira.KeyRemoteLinks] = orEmpty(prev[jira.KeyRemoteLinks])
	}
	fields, _ := issue["fields"].(map[string]any)
	if j.client.SLAConfigured() && fields != nil {
		if serr != nil {
			j.log.Warn("jira: SLA fields not fetched; keeping the previous ones", "issue", key, "error", serr)
			sla, _ = prev["fields"].(map[string]any)
		}
		for _, f := range jira.SLAFields {
			if v, ok := sla[f]; ok {
				fields[f] = v
			}
		}
	}
	issue[jira.KeySyncedAt] = jira.SyncedAt(j.opts.Now())
	j.download(ctx, key, fields)

	month := jira.Month(issue)
	if month == "" {
		month = partitionOf(prev)
	}
	if month == "" {
		month = j.opts.Now().UTC().Format("2006-01")
	}
	issue[keyPartition] = month

	// A moved issue: its old key's rows must go. The old key comes from our id index, the
	// webhook's changelog, or the key we asked for when Jira answered with another.
	old := map[string]bool{}
	if id != "" {
		if k, ok := j.keyOfID(id); ok && k != key {
			old[k] = true
		}
	}
	for _, k := range []string{in.FromKey, in.Issue} {
		if jira.ValidKey(k) && k != key {
			old[k] = true
		}
	}
	if err := j.writeRaw(key, issue); err != nil {
		return nil, err
	}
	byMonth := map[string][]string{month: {key}}
	for k := range old {
		oldRaw, err := j.raw.Read(k)
		if err != nil || jira.IsTombstone(oldRaw) {
			continue
		}
		oldRaw[jira.KeyMovedTo] = key
		if err := j.writeRaw(k, oldRaw); err != nil {
			return nil, err
		}
		if m := partitionOf(oldRaw); m != "" {
			byMonth[m] = append(byMonth[m], k)
		}
		j.log.Info("jira: issue moved", "from", k, "to", key)
	}
	if id != "" {
		if err := j.setKeyOfID(id, key); err != nil {
			return nil, err
		}
	}
	return j.fetched(byMonth), nil
}

func orEmpty(v any) any {
	if v == nil {
		return []any{}
	}
	return v
}

// partitionOf is the month a raw issue's rows are in; "" when unknown.
func partitionOf(raw jira.Issue) string {
	if m, ok := raw[keyPartition].(string); ok && jira.ValidMonth(m) {
		return m
	}
	if raw == nil {
		return ""
	}
	return jira.Month(raw)
}

// fetched marks the keys pending and returns one event per month.
func (j *Jira) fetched(byMonth map[string][]string) []pipeline.Event {
	months := make([]string, 0, len(byMonth))
	for m := range byMonth {
		months = append(months, m)
	}
	sort.Strings(months)
	var events []pipeline.Event
	for _, m := range months {
		j.markPending(m, byMonth[m])
		ev := JiraIssueFetched{Month: m, Keys: byMonth[m], Epoch: j.epoch}
		pipeline.Stamp(&ev.Header, "", "jira/"+m)
		events = append(events, ev)
	}
	return events
}

// download fetches the issue's attachments that are not on disk yet (streamed, atomically,
// under the size limit); failures are logged and the row keeps an empty local_path.
func (j *Jira) download(ctx context.Context, key string, fields map[string]any) {
	for _, a := range jira.List(fields["attachment"]) {
		id, _ := jira.Field(a, "id").(string)
		name, _ := jira.Field(a, "filename").(string)
		content, _ := jira.Field(a, "content").(string)
		if id == "" || name == "" || content == "" {
			continue
		}
		size := int64(-1)
		if n, ok := jira.Field(a, "size").(float64); ok {
			size = int64(n)
		} else if n, ok := jira.Field(a, "size").(interface{ Int64() (int64, error) }); ok {
			size, _ = n.Int64()
		}
		dst := filepath.Join(j.attachDir, jira.AttachmentPath(key, id, name))
		if fi, err := os.Stat(dst); err == nil && (size < 0 || fi.Size() == size) {
			continue
		}
		if size > j.opts.AttachmentLimit {
			j.log.Info("jira: attachment over the size limit; not downloaded", "issue", key, "attachment", id, "bytes", size)
			continue
		}
		if _, err := j.client.Download(ctx, content, dst, j.opts.AttachmentLimit); err != nil {
			j.log.Warn("jira: attachment not downloaded", "issue", key, "attachment", id, "error", err)
		}
	}
}

// deleteIssue tombstones an issue's raw file and removes its rows (from every month when its
// month is unknown).
func (j *Jira) deleteIssue(ref, id string) ([]pipeline.Event, error) {
	key := ref
	if !jira.ValidKey(key) {
		k, ok := j.keyOfID(ref)
		if !ok {
			j.log.Warn("jira: deleted issue unknown here", "issue", ref)
			return nil, nil
		}
		key = k
	}
	raw, err := j.raw.Read(key)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var months []string
	if raw != nil {
		if id == "" {
			id, _ = raw["id"].(string)
		}
		if raw[jira.KeyDeletedAt] == nil {
			raw[jira.KeyDeletedAt] = jira.SyncedAt(j.opts.Now())
			if err := j.writeRaw(key, raw); err != nil {
				return nil, err
			}
		}
		if m := partitionOf(raw); m != "" {
			months = []string{m}
		}
	} else if err := j.writeRaw(key, jira.Issue{"key": key, jira.KeyDeletedAt: jira.SyncedAt(j.opts.Now())}); err != nil {
		return nil, err // a tombstone also for an issue never fetched: a late update must not revive it
	}
	if months == nil {
		if months, err = j.months(); err != nil {
			return nil, err
		}
	}
	if id != "" {
		if err := j.setKeyOfID(id, ""); err != nil {
			return nil, err
		}
	}
	byMonth := map[string][]string{}
	for _, m := range months {
		byMonth[m] = []string{key}
	}
	j.log.Info("jira: issue deleted", "issue", key, "months", months)
	return j.fetched(byMonth), nil
}

// months lists the months that have an issues file.
func (j *Jira) months() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(j.parquet, "issues"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out []string
	for _, e := range entries {
		if m, ok := strings.CutSuffix(e.Name(), ".parquet"); ok && jira.ValidMonth(m) {
			out = append(out, m)
		}
	}
	return out, err
}

func (j *Jira) retransform(key string) ([]pipeline.Event, error) {
	raw, err := j.raw.Read(key)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, pipeline.Permanent(err)
	}
	m := partitionOf(raw)
	if m == "" {
		return nil, nil
	}
	return j.fetched(map[string][]string{m: {key}}), nil
}

// pollSLA refreshes an open issue's SLA fields and heals its status and resolution through the
// service account; the rest of the raw issue stays as the last webhook left it.
func (j *Jira) pollSLA(ctx context.Context, key string) ([]pipeline.Event, error) {
	raw, err := j.raw.Read(key)
	if errors.Is(err, os.ErrNotExist) || (err == nil && jira.IsTombstone(raw)) {
		j.log.Debug("jira: SLA poll skipped: no raw issue", "issue", key)
		return nil, nil
	}
	if err != nil {
		return nil, pipeline.Permanent(err)
	}
	want := append(append([]string(nil), jira.SLAFields...), "status", "resolution", "resolutiondate", "updated")
	f, err := j.client.SLA(ctx, key, want)
	if errors.Is(err, jira.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	hasSLA := false
	for _, name := range jira.SLAFields {
		if m, ok := f[name].(map[string]any); ok && m["errorMessage"] == nil &&
			(m["name"] != nil && m["name"] != "" || m["completedCycles"] != nil || m["ongoingCycle"] != nil) {
			hasSLA = true
		}
	}
	healed := jira.Field(f, "status", "statusCategory", "name") == "Done"
	if !hasSLA && !healed {
		return nil, nil
	}
	fields, _ := raw["fields"].(map[string]any)
	if fields == nil {
		fields = map[string]any{}
		raw["fields"] = fields
	}
	for _, name := range jira.SLAFields {
		if v, ok := f[name]; ok {
			fields[name] = v
		}
	}
	// Only non-null values: a reopened ticket keeps its old resolution until its next webhook.
	for _, name := range []string{"status", "resolution", "resolutiondate", "updated"} {
		if v := f[name]; v != nil {
			fields[name] = v
		}
	}
	if err := j.writeRaw(key, raw); err != nil {
		return nil, err
	}
	result := "updated"
	if healed {
		result = "healed"
	}
	j.log.Info("jira: SLA poll", "issue", key, "result", result)
	m := partitionOf(raw)
	if m == "" {
		return nil, nil
	}
	return j.fetched(map[string][]string{m: {key}}), nil
}

func (j *Jira) keyOfID(id string) (string, bool) {
	var key string
	j.opts.DB.View(func(tx *bolt.Tx) error {
		key = string(tx.Bucket(bucketJiraIDs).Get([]byte(id)))
		return nil
	})
	return key, key != ""
}

// setKeyOfID records (or with "" forgets) the key an issue id has now.
func (j *Jira) setKeyOfID(id, key string) error {
	if cur, ok := j.keyOfID(id); ok == (key != "") && cur == key {
		return nil
	}
	return j.opts.DB.Batch(func(tx *bolt.Tx) error {
		if key == "" {
			return tx.Bucket(bucketJiraIDs).Delete([]byte(id))
		}
		return tx.Bucket(bucketJiraIDs).Put([]byte(id), []byte(key))
	})
}

// write rewrites one month with every change pending for it and continues the chain with a
// table.converted per table whose file changed.
func (j *Jira) write(msg *message.Message) ([]pipeline.Event, error) {
	var in JiraIssueFetched
	if err := pipeline.Decode(msg, &in); err != nil {
		return nil, pipeline.Permanent(err)
	}
	if !jira.ValidMonth(in.Month) {
		return nil, pipeline.Permanent(fmt.Errorf("jira: bad partition %q", in.Month))
	}
	keys, skip := j.takePending(in)
	if skip {
		return nil, nil
	}
	start := time.Now()
	stats, err := j.rewrite(msg.Context(), in.Month, keys)
	if err != nil {
		j.markPending(in.Month, keys) // the retry takes them all again
		return nil, err
	}
	events := j.announce(stats, in.Month)
	copied, encoded := 0, 0
	for _, st := range stats {
		copied, encoded = copied+st.GroupsCopied, encoded+st.GroupsEncoded
	}
	j.log.Debug("jira: partition written", "month", in.Month, "issues", len(keys), "took", time.Since(start),
		"row_groups_copied", copied, "row_groups_encoded", encoded)
	return events, nil
}

// stagedRows are an issue's rows in month, transformed when its raw file was written, so the
// partition writer (one at a time per month, on the critical path of every change) need not
// read, decode and transform the file again. Only this process's writes are staged; after a
// restart the writer reads the raw files.
type stagedRows struct {
	month string
	rows  jira.Rows
}

// writeRaw stores an issue's raw file and stages its rows for the writer; a deleted or moved
// issue, or one that does not transform, is left for the writer to read from the file.
func (j *Jira) writeRaw(key string, issue jira.Issue) error {
	if err := j.raw.Write(key, issue); err != nil {
		return err
	}
	var st stagedRows
	if !jira.IsTombstone(issue) {
		if rows, err := j.tr.Transform(issue); err == nil {
			st = stagedRows{month: partitionOf(issue), rows: rows}
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if st.rows == nil {
		delete(j.staged, key)
	} else {
		j.staged[key] = st
	}
	return nil
}

// takeStaged returns the staged rows of key when they are for month.
func (j *Jira) takeStaged(key, month string) (stagedRows, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st, ok := j.staged[key]
	if ok && st.month == month {
		delete(j.staged, key)
	}
	return st, ok
}

// rewrite replaces the rows of keys in month with what their raw files say now.
func (j *Jira) rewrite(ctx context.Context, month string, keys []string) ([]jira.TableStats, error) {
	replace := make(map[string]bool, len(keys))
	rows := jira.Rows{}
	for _, k := range keys {
		replace[k] = true
		if st, ok := j.takeStaged(k, month); ok {
			if st.month == month {
				for t, tr := range st.rows {
					rows[t] = append(rows[t], tr...)
				}
			}
			continue // staged for another month: its rows live there now
		}
		raw, err := j.raw.Read(k)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if jira.IsTombstone(raw) || partitionOf(raw) != month {
			continue // deleted, moved, or its rows live in another month now
		}
		r, err := j.tr.Transform(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.raw.Path(k), err)
		}
		for t, tr := range r {
			rows[t] = append(rows[t], tr...)
		}
	}
	return j.writer.Write(ctx, j.tr.Tables(), month, replace, rows)
}
