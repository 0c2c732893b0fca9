// Package memory owns corporate memory: it distils the analysts' CLAUDE.local.md notes into a
// shared catalogue of knowledge items through a language model (incrementally: only changed
// notes, in batches that fit the model), screens new text for secrets and personal data (fail
// closed), lets admins govern the items (every change an event: the audit trail), lets analysts
// vote, and renders each analyst's upvoted and mandatory items as Claude Code rule files.
package memory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// Options tune the collector; zero values take the defaults.
type Options struct {
	MaxBatchBytes   int           // notes text per model call (default 48 KiB); one user's longer notes are cut
	MaxExisting     int           // existing items sent with a batch (default 60)
	MaxTokens       int           // the answer's max_tokens (default 8192); a cut answer splits the batch
	RetryBase       time.Duration // a user's first wait after a failed batch (default 30 min), doubled per failure
	RetryMax        time.Duration // the longest wait (default 24 h)
	Interval        time.Duration // scheduled collections (default 30 min); see Start
	InternalDomains []string      // host names under these domains are held back (default: auth.allowed_domain(s))
}

// Service is the corporate memory of one instance.
type Service struct {
	Mem      *store.Memory
	Users    *store.Users
	Provider Provider // nil: no collection (items, votes and rules still work)
	Opts     Options
	Logger   *slog.Logger
	Now      func() time.Time
	DataDir  string // the instance's data/; notes are data/users/<email>/CLAUDE.local.md

	collectMu sync.Mutex
	mu        sync.Mutex
	pub       message.Publisher
}

// New opens the memory state in the store's database. provider may be nil.
func New(cfg *config.Config, mem *store.Memory, users *store.Users, provider Provider, opts Options, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 48 << 10
	}
	if opts.MaxExisting <= 0 {
		opts.MaxExisting = 60
	}
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = 8192
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 30 * time.Minute
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 24 * time.Hour
	}
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Minute
	}
	if opts.InternalDomains == nil {
		a := cfg.Instance.Auth
		opts.InternalDomains = append([]string{a.AllowedDomain}, a.AllowedDomains...)
	}
	return &Service{Mem: mem, Users: users, Provider: provider, Opts: opts, Logger: logger, Now: time.Now, DataDir: cfg.Paths.DataDir}
}

// SetPublisher sets where requests and audit events are published (the pipeline's publisher).
func (s *Service) SetPublisher(pub message.Publisher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pub = pub
}

func (s *Service) publisher() message.Publisher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pub
}

// NotesPath is where the server keeps a user's latest CLAUDE.local.md (written by the push route).
func (s *Service) NotesPath(email string) string {
	return filepath.Join(s.DataDir, "users", url.PathEscape(email), "CLAUDE.local.md")
}

var errNotRunning = errors.New("corporate memory is not running (no pipeline)")

// RequestCollect publishes a collection request and returns its run id.
func (s *Service) RequestCollect(trigger, by string, force bool) (string, error) {
	pub := s.publisher()
	if pub == nil {
		return "", errNotRunning
	}
	req := pipeline.MemoryCollectRequested{Trigger: trigger, RequestedBy: by, Force: force}
	pipeline.Stamp(&req.Header, "mem-"+s.Now().UTC().Format("20060102T150405.000000000"), "")
	return req.RunID, pipeline.Publish(pub, req)
}

// NotesChanged is called when an analyst pushed a new CLAUDE.local.md: a collection follows
// (it sends only what changed, so a push costs one small model call at most).
func (s *Service) NotesChanged(email string) {
	if _, err := s.RequestCollect(pipeline.TriggerNotes, email, false); err != nil && !errors.Is(err, errNotRunning) {
		s.Logger.Warn("memory: collection not requested", "user", email, "error", err)
	}
}

// Start requests a collection every Opts.Interval until ctx ends.
func (s *Service) Start(ctx context.Context) {
	go func() {
		t := time.NewTicker(s.Opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := s.RequestCollect(pipeline.TriggerSchedule, "schedule", false); err != nil {
					s.Logger.Warn("memory: scheduled collection not requested", "error", err)
				}
			}
		}
	}()
}

// audit publishes one item change. The change is already stored; a failed publish is logged.
func (s *Service) audit(runID string, it store.MemoryItem, action, by, reason string) {
	ev := pipeline.MemoryItemChanged{ItemID: it.ID, Action: action, By: by, Title: it.Title, Status: it.Status, Reason: reason}
	pipeline.Stamp(&ev.Header, runID, "")
	pub := s.publisher()
	if pub == nil {
		s.Logger.Warn("memory: audit event not published (no pipeline)", "item", it.ID, "action", action)
		return
	}
	if err := pipeline.Publish(pub, ev); err != nil {
		s.Logger.Error("memory: audit event not published", "item", it.ID, "action", action, "error", err)
	}
}

// --- governance

// Edit is an admin's change of an item's text; nil fields stay.
type Edit struct {
	Title    *string   `json:"title"`
	Content  *string   `json:"content"`
	Category *string   `json:"category"`
	Tags     *[]string `json:"tags"`
}

// ErrInvalid wraps input errors an API reports as 400.
var ErrInvalid = errors.New("invalid")

// EditItem changes an item's text; the collector keeps the admin's text from then on.
func (s *Service) EditItem(id, by string, e Edit) (store.MemoryItem, error) {
	it, err := s.Mem.UpdateItem(id, func(it *store.MemoryItem) error {
		if e.Title != nil {
			if strings.TrimSpace(*e.Title) == "" {
				return fmt.Errorf("%w: title is empty", ErrInvalid)
			}
			it.Title = cutRunes(strings.TrimSpace(*e.Title), maxTitle)
		}
		if e.Content != nil {
			if strings.TrimSpace(*e.Content) == "" {
				return fmt.Errorf("%w: content is empty", ErrInvalid)
			}
			it.Content = strings.TrimSpace(*e.Content)
		}
		if e.Category != nil {
			if !ValidCategory(*e.Category) {
				return fmt.Errorf("%w: category must be one of %s", ErrInvalid, strings.Join(Categories, ", "))
			}
			it.Category = *e.Category
		}
		if e.Tags != nil {
			it.Tags = cleanTags(*e.Tags)
		}
		it.EditedBy, it.UpdatedAt = by, s.Now().UTC()
		return nil
	})
	if err == nil {
		s.audit("", it, "edited", by, "")
	}
	return it, err
}

// Approve publishes an item (a pending one after review, or a rejected one after all).
func (s *Service) Approve(id, by string) (store.MemoryItem, error) {
	return s.setStatus(id, by, store.MemoryPublished, "approved", "")
}

// Reject takes an item out of lists and rules for good; the collector does not bring it back.
func (s *Service) Reject(id, by, reason string) (store.MemoryItem, error) {
	return s.setStatus(id, by, store.MemoryRejected, "rejected", reason)
}

func (s *Service) setStatus(id, by, status, action, reason string) (store.MemoryItem, error) {
	it, err := s.Mem.UpdateItem(id, func(it *store.MemoryItem) error {
		it.Status, it.Hold, it.UpdatedAt = status, "", s.Now().UTC()
		if status == store.MemoryRejected {
			it.Hold = reason
		}
		return nil
	})
	if err == nil {
		s.audit("", it, action, by, reason)
	}
	return it, err
}

// SetMandatory puts a published item in everyone's rules (or takes it out).
func (s *Service) SetMandatory(id, by string, mandatory bool) (store.MemoryItem, error) {
	it, err := s.Mem.UpdateItem(id, func(it *store.MemoryItem) error {
		if mandatory && it.Status != store.MemoryPublished {
			return fmt.Errorf("%w: only a published item can be mandatory (approve it first)", ErrInvalid)
		}
		it.Mandatory, it.UpdatedAt = mandatory, s.Now().UTC()
		return nil
	})
	if err == nil {
		action := "mandatory"
		if !mandatory {
			action = "optional"
		}
		s.audit("", it, action, by, "")
	}
	return it, err
}

// Vote records a user's vote (-1, 0 to remove, 1) on a published item.
func (s *Service) Vote(email, id string, vote int) error {
	if vote < -1 || vote > 1 {
		return fmt.Errorf("%w: vote must be -1, 0 or 1", ErrInvalid)
	}
	it, err := s.Mem.Item(id)
	if err != nil {
		return err
	}
	if it.Status != store.MemoryPublished {
		return fmt.Errorf("memory item %s: %w", id, store.ErrNotFound)
	}
	return s.Mem.SetVote(email, id, vote)
}

// SetConsent records whether a user's notes may be mined. Withdrawn consent takes the user out
// of every item's sources at the next collection.
func (s *Service) SetConsent(email string, consent bool) error {
	return s.Mem.SetConsent(email, consent, s.Now())
}

// --- browsing

// Query selects items for a list.
type Query struct {
	Search   string
	Category string
	Sort     string // score (default) | recent | contributors
	Page     int    // from 1
	PerPage  int    // 1..100
	MyRules  bool   // only the items in the caller's rules
	Status   string // admins: published (default) | pending | rejected | all
}

// ItemView is an item as the caller sees it.
type ItemView struct {
	store.MemoryItem
	Score        int  `json:"score"`
	Upvotes      int  `json:"upvotes"`
	Downvotes    int  `json:"downvotes"`
	Contributors int  `json:"contributors"`
	MyVote       int  `json:"my_vote"`
	InMyRules    bool `json:"in_my_rules"`
}

// Page is one page of a list.
type Page struct {
	Items   []ItemView `json:"items"`
	Total   int        `json:"total"`
	Page    int        `json:"page"`
	PerPage int        `json:"per_page"`
}

// List returns the items matching q as email sees them. Only admins see other statuses.
func (s *Service) List(email string, admin bool, q Query) (Page, error) {
	if q.Page < 1 || q.PerPage < 1 || q.PerPage > 100 {
		return Page{}, fmt.Errorf("%w: page must be 1 or more and per_page 1 to 100", ErrInvalid)
	}
	if q.Category != "" && !ValidCategory(q.Category) {
		return Page{}, fmt.Errorf("%w: category must be one of %s", ErrInvalid, strings.Join(Categories, ", "))
	}
	switch q.Sort {
	case "", "score", "recent", "contributors":
	default:
		return Page{}, fmt.Errorf("%w: sort must be score, recent or contributors", ErrInvalid)
	}
	status := q.Status
	if status == "" {
		status = store.MemoryPublished
	}
	if status != store.MemoryPublished && !admin {
		return Page{}, fmt.Errorf("%w: only admins see %s items", ErrInvalid, status)
	}
	views, err := s.views(email)
	if err != nil {
		return Page{}, err
	}
	search := strings.ToLower(strings.TrimSpace(q.Search))
	var out []ItemView
	for _, v := range views {
		if status != "all" && v.Status != status {
			continue
		}
		if q.Category != "" && v.Category != q.Category || q.MyRules && !v.InMyRules {
			continue
		}
		if search != "" && !strings.Contains(strings.ToLower(v.Title+"\x00"+v.Content+"\x00"+strings.Join(v.Tags, "\x00")), search) {
			continue
		}
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch q.Sort {
		case "recent":
			if !a.UpdatedAt.Equal(b.UpdatedAt) {
				return a.UpdatedAt.After(b.UpdatedAt)
			}
		case "contributors":
			if a.Contributors != b.Contributors {
				return a.Contributors > b.Contributors
			}
		default:
			if a.Score != b.Score {
				return a.Score > b.Score
			}
			if !a.UpdatedAt.Equal(b.UpdatedAt) {
				return a.UpdatedAt.After(b.UpdatedAt)
			}
		}
		return a.ID < b.ID
	})
	p := Page{Total: len(out), Page: q.Page, PerPage: q.PerPage, Items: []ItemView{}}
	if from := (q.Page - 1) * q.PerPage; from < len(out) {
		p.Items = out[from:min(from+q.PerPage, len(out))]
	}
	return p, nil
}

// views returns every item with its votes as email sees them, by id.
func (s *Service) views(email string) ([]ItemView, error) {
	items, err := s.Mem.Items()
	if err != nil {
		return nil, err
	}
	votes, err := s.Mem.Votes()
	if err != nil {
		return nil, err
	}
	up, down := map[string]int{}, map[string]int{}
	for _, vs := range votes {
		for id, v := range vs {
			if v > 0 {
				up[id]++
			} else {
				down[id]++
			}
		}
	}
	mine := votes[email]
	out := make([]ItemView, 0, len(items))
	for _, it := range items {
		out = append(out, ItemView{MemoryItem: it, Upvotes: up[it.ID], Downvotes: down[it.ID], Score: up[it.ID] - down[it.ID],
			Contributors: len(it.SourceUsers), MyVote: mine[it.ID],
			InMyRules: it.Status == store.MemoryPublished && (it.Mandatory || mine[it.ID] > 0)})
	}
	return out, nil
}

// Stats summarizes the memory for a user.
type Stats struct {
	KnowledgeCount int            `json:"knowledge_count"`
	Contributors   int            `json:"contributors"`
	Categories     map[string]int `json:"categories"`
	LastCollection *time.Time     `json:"last_collection"`
	YourVotes      int            `json:"your_votes"`
	YourUpvotes    int            `json:"your_upvotes"`
	YourRules      int            `json:"your_rules"`
	Mandatory      int            `json:"mandatory"`
	Pending        *int           `json:"pending,omitempty"` // admins only
	Consent        bool           `json:"consent"`
}

// Stats returns the numbers of the memory page and the dashboard widget.
func (s *Service) Stats(email string, admin bool) (Stats, error) {
	views, err := s.views(email)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Categories: map[string]int{}}
	contributors := map[string]bool{}
	pending := 0
	for _, v := range views {
		if v.Status == store.MemoryPending {
			pending++
		}
		if v.Status != store.MemoryPublished {
			continue
		}
		st.KnowledgeCount++
		st.Categories[v.Category]++
		for _, u := range v.SourceUsers {
			contributors[u] = true
		}
		if v.MyVote != 0 {
			st.YourVotes++
		}
		if v.MyVote > 0 {
			st.YourUpvotes++
		}
		if v.InMyRules {
			st.YourRules++
		}
		if v.Mandatory {
			st.Mandatory++
		}
	}
	st.Contributors = len(contributors)
	if admin {
		st.Pending = &pending
	}
	last, err := s.Mem.LastCollection()
	if err != nil {
		return st, err
	}
	if !last.IsZero() {
		st.LastCollection = &last
	}
	c, err := s.Mem.Consent(email)
	st.Consent = c.Consent
	return st, err
}
