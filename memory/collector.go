package memory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// Categories is the fixed category enum of knowledge items.
var Categories = []string{"data_analysis", "api_integration", "debugging", "performance", "workflow", "infrastructure", "business_logic"}

// ValidCategory reports whether c is one of Categories.
func ValidCategory(c string) bool {
	for _, x := range Categories {
		if x == c {
			return true
		}
	}
	return false
}

// Candidate is one item as the model returns it.
type Candidate struct {
	ExistingID  *string  `json:"existing_id"`
	Title       string   `json:"title"`
	Content     string   `json:"content"`
	Category    string   `json:"category"`
	Tags        []string `json:"tags"`
	SourceUsers []string `json:"source_users"`
}

var itemsSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"items": map[string]any{
			"type": "array",
			"items": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"existing_id":  map[string]any{"type": []string{"string", "null"}},
					"title":        map[string]any{"type": "string", "maxLength": maxTitle},
					"content":      map[string]any{"type": "string", "maxLength": maxContent},
					"category":     map[string]any{"type": "string", "enum": Categories},
					"tags":         map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1, "maxItems": 4},
					"source_users": map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1},
				},
				"required":             []string{"existing_id", "title", "content", "category", "tags", "source_users"},
				"additionalProperties": false,
			},
		},
	},
	"required":             []string{"items"},
	"additionalProperties": false,
}

// Sizes asked of the model; longer text is cut, not rejected.
const (
	maxTitle   = 80
	maxContent = 800
	maxTags    = 4
)

const collectSystem = `You keep a shared catalogue of practical knowledge for the company's data analysts,
distilled from the working notes they keep while analysing data with an AI assistant.
From the notes given, return the knowledge items they support:
- Reuse an existing item (set existing_id to its id) when the notes say the same thing; you may
  sharpen its text. Merge duplicates into one item. Set existing_id to null only for new knowledge.
- source_users lists the labels (U1, U2, ...) of every user whose notes support the item.
- Leave out existing items the notes do not touch: they are kept as they are.
- Keep only specific, actionable, reusable knowledge about the data, tools and ways of working.
- Never include secrets, credentials, personal data, e-mail addresses, internal host names, URLs
  or IP addresses, paths on someone's computer, personal preferences, trivial or unclear notes,
  or remarks about people.
- Title at most 60 characters, content at most 500, 2 to 4 lowercase tags, and one category of:
  data_analysis, api_integration, debugging, performance, workflow, infrastructure, business_logic.`

// note is one user's current notes.
type note struct {
	email string
	text  string
	hash  string
}

// Collect runs one incremental collection: sources whose notes are gone leave their items,
// the notes that changed since they were last distilled go to the model in batches, and each
// batch's answer is merged into the catalogue. A failed batch does not stop the others: its
// users are retried on a later run, after a backoff that doubles with each failure.
func (s *Service) Collect(ctx context.Context, req pipeline.MemoryCollectRequested) (pipeline.MemoryCollected, error) {
	s.collectMu.Lock()
	defer s.collectMu.Unlock()
	out := pipeline.MemoryCollected{}
	pipeline.Stamp(&out.Header, req.RunID, "")
	now := s.Now().UTC()
	active, unreadable, err := s.notes()
	if err != nil {
		return out, err
	}
	progress, err := s.Mem.Progress()
	if err != nil {
		return out, err
	}
	if out.Removed, err = s.dropGoneSources(req.RunID, active, unreadable, progress); err != nil {
		return out, err
	}
	var changed []note
	for _, n := range active {
		p := progress[n.email]
		if p.Hash == n.hash {
			continue
		}
		if !req.Force && now.Before(p.NextAttempt) {
			out.Deferred++
			continue
		}
		changed = append(changed, n)
	}
	if len(changed) == 0 {
		out.Skipped = "no changed notes"
		return out, s.Mem.SetLastCollection(now)
	}
	if s.Provider == nil {
		out.Skipped = "no model configured (ai.api_key)"
		return out, nil
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].email < changed[j].email })
	queue := s.batches(changed)
	for len(queue) > 0 {
		batch := queue[0]
		queue = queue[1:]
		res, err := s.collectBatch(ctx, req.RunID, batch)
		if errors.Is(err, ErrTruncated) && len(batch) > 1 {
			// The answer did not fit: the halves go first.
			half := len(batch) / 2
			queue = append([][]note{batch[:half], batch[half:]}, queue...)
			continue
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if err != nil {
			s.Logger.Warn("memory batch failed", "users", len(batch), "error", err)
			for _, n := range batch {
				out.Failed = append(out.Failed, n.email)
				if perr := s.backoff(n.email, progress[n.email], now, err); perr != nil {
					return out, perr
				}
			}
			continue
		}
		out.Batches++
		out.Users += len(batch)
		out.Created += res.created
		out.Updated += res.updated
		out.Held += res.held
		for _, n := range batch {
			if err := s.Mem.SetProgress(n.email, store.MemoryProgress{Hash: n.hash, CollectedAt: now}); err != nil {
				return out, err
			}
		}
	}
	return out, s.Mem.SetLastCollection(now)
}

// notes reads the current notes of every enabled user who consented. Users whose file cannot
// be read for another reason than its absence are returned apart: nothing is concluded about them.
func (s *Service) notes() (active map[string]note, unreadable map[string]bool, err error) {
	users, err := s.Users.List()
	if err != nil {
		return nil, nil, err
	}
	active, unreadable = map[string]note{}, map[string]bool{}
	for _, u := range users {
		if u.Disabled {
			continue
		}
		c, err := s.Mem.Consent(u.Email)
		if err != nil {
			return nil, nil, err
		}
		if !c.Consent {
			continue
		}
		b, err := os.ReadFile(s.NotesPath(u.Email))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			s.Logger.Warn("memory: notes unreadable", "user", u.Email, "error", err)
			unreadable[u.Email] = true
			continue
		}
		if strings.TrimSpace(string(b)) == "" {
			continue
		}
		sum := sha256.Sum256(b)
		active[u.Email] = note{email: u.Email, text: string(b), hash: hex.EncodeToString(sum[:])}
	}
	return active, unreadable, nil
}

// dropGoneSources removes users whose notes are gone (deleted, consent withdrawn, user disabled
// or removed) from the items' sources, and the items left with no source at all. This is the
// only way an item leaves the catalogue besides an admin; mandatory items stay.
func (s *Service) dropGoneSources(runID string, active map[string]note, unreadable map[string]bool, progress map[string]store.MemoryProgress) (int, error) {
	present := func(email string) bool { _, ok := active[email]; return ok || unreadable[email] }
	for email := range progress {
		if !present(email) {
			if err := s.Mem.SetProgress(email, store.MemoryProgress{}); err != nil {
				return 0, err
			}
		}
	}
	items, err := s.Mem.Items()
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, it := range items {
		var keep []string
		for _, u := range it.SourceUsers {
			if present(u) {
				keep = append(keep, u)
			}
		}
		if len(keep) == len(it.SourceUsers) {
			continue
		}
		if len(keep) == 0 && !it.Mandatory {
			if err := s.Mem.DeleteItem(it.ID); err != nil {
				return removed, err
			}
			removed++
			s.audit(runID, it, "removed", "collector", "every source's notes are gone")
			continue
		}
		it.SourceUsers = keep
		if err := s.Mem.PutItem(it); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func (s *Service) backoff(email string, p store.MemoryProgress, now time.Time, cause error) error {
	p.Failures++
	wait := s.Opts.RetryBase << min(p.Failures-1, 20)
	if wait > s.Opts.RetryMax || wait <= 0 {
		wait = s.Opts.RetryMax
	}
	p.NextAttempt = now.Add(wait)
	p.LastError = cutRunes(cause.Error(), 300)
	return s.Mem.SetProgress(email, p)
}

// batches packs notes into groups whose text fits Opts.MaxBatchBytes; one user's notes longer
// than that are cut (the start is kept).
func (s *Service) batches(notes []note) [][]note {
	var out [][]note
	var cur []note
	size := 0
	for _, n := range notes {
		if len(n.text) > s.Opts.MaxBatchBytes {
			n.text = cutBytes(n.text, s.Opts.MaxBatchBytes) + "\n[... cut]"
		}
		if len(cur) > 0 && size+len(n.text) > s.Opts.MaxBatchBytes {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, n)
		size += len(n.text)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

type batchResult struct{ created, updated, held int }

// collectBatch sends one batch with its relevant existing items and merges the answer.
func (s *Service) collectBatch(ctx context.Context, runID string, batch []note) (batchResult, error) {
	var res batchResult
	items, err := s.Mem.Items()
	if err != nil {
		return res, err
	}
	label := map[string]string{} // email -> U1...
	email := map[string]string{} // U1... -> email
	for i, n := range batch {
		l := fmt.Sprintf("U%d", i+1)
		label[n.email], email[l] = l, n.email
	}
	sent := s.relevant(items, batch)
	prompt := s.prompt(batch, sent, label)
	raw, err := s.Provider.Structured(ctx, Request{System: collectSystem, Prompt: prompt, Name: "knowledge_items",
		Schema: itemsSchema, MaxTokens: s.Opts.MaxTokens})
	if err != nil {
		return res, err
	}
	cands, err := decodeCandidates(raw)
	if err != nil {
		return res, err
	}
	byID := map[string]store.MemoryItem{}
	for _, it := range items {
		byID[it.ID] = it
	}
	sentIDs := map[string]bool{}
	for _, it := range sent {
		sentIDs[it.ID] = true
	}
	now := s.Now().UTC()
	for _, c := range cands {
		var sources []string
		for _, l := range c.SourceUsers {
			if e, ok := email[strings.TrimSpace(l)]; ok {
				sources = append(sources, e)
			}
		}
		if len(sources) == 0 {
			s.Logger.Warn("memory: item without a known source skipped", "title", c.Title)
			continue
		}
		c.Title, c.Content, c.Tags = cutRunes(strings.TrimSpace(c.Title), maxTitle), cutRunes(strings.TrimSpace(c.Content), maxContent), cleanTags(c.Tags)
		if c.ExistingID != nil && sentIDs[*c.ExistingID] {
			it := byID[*c.ExistingID]
			action, reason := s.refresh(ctx, &it, c, sources, now)
			if action == "" {
				continue
			}
			if err := s.Mem.PutItem(it); err != nil {
				return res, err
			}
			byID[it.ID] = it
			res.updated++
			if action == "held" {
				res.held++
			}
			s.audit(runID, it, action, "collector", reason)
			continue
		}
		id := itemID(c.Title, c.Content)
		if it, ok := byID[id]; ok {
			// The same text again: only the sources grow.
			if merged := it; addSources(&merged, sources) {
				merged.UpdatedAt = now
				if err := s.Mem.PutItem(merged); err != nil {
					return res, err
				}
				byID[id] = merged
				res.updated++
				s.audit(runID, merged, "updated", "collector", "")
			}
			continue
		}
		it := store.MemoryItem{ID: id, Title: c.Title, Content: c.Content, Category: c.Category, Tags: c.Tags,
			SourceUsers: sortedUnique(sources), Status: store.MemoryPublished, ExtractedAt: now, UpdatedAt: now}
		action := "created"
		if why := s.checkSensitive(ctx, c); why != "" {
			it.Status, it.Hold, action = store.MemoryPending, why, "held"
			res.held++
		} else {
			res.created++
		}
		if err := s.Mem.PutItem(it); err != nil {
			return res, err
		}
		byID[id] = it
		s.audit(runID, it, action, "collector", it.Hold)
	}
	return res, nil
}

// refresh applies the model's version of an existing item: the sources only grow (a source
// leaves only when its notes are gone); the text changes unless an admin edited it, and changed
// text of a published item passes the sensitivity check again. It returns the audit action, or
// "" when nothing changed.
func (s *Service) refresh(ctx context.Context, it *store.MemoryItem, c Candidate, sources []string, now time.Time) (action, reason string) {
	changed := addSources(it, sources)
	textChanged := it.EditedBy == "" && (it.Title != c.Title || it.Content != c.Content || it.Category != c.Category ||
		strings.Join(it.Tags, ",") != strings.Join(c.Tags, ","))
	if !changed && !textChanged {
		return "", ""
	}
	it.UpdatedAt = now
	if !textChanged {
		return "updated", ""
	}
	it.Title, it.Content, it.Category, it.Tags = c.Title, c.Content, c.Category, c.Tags
	if it.Status != store.MemoryPublished {
		return "updated", ""
	}
	if why := s.checkSensitive(ctx, c); why != "" {
		it.Status, it.Hold = store.MemoryPending, why
		return "held", why
	}
	return "updated", ""
}

func addSources(it *store.MemoryItem, sources []string) bool {
	merged := sortedUnique(append(append([]string(nil), it.SourceUsers...), sources...))
	if strings.Join(merged, "\x00") == strings.Join(it.SourceUsers, "\x00") {
		return false
	}
	it.SourceUsers = merged
	return true
}

// decodeCandidates parses the model's answer strictly: unknown fields, a missing field, an empty
// title or content, or a category outside the enum reject the whole answer.
func decodeCandidates(raw json.RawMessage) ([]Candidate, error) {
	var ans struct {
		Items *[]json.RawMessage `json:"items"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ans); err != nil {
		return nil, fmt.Errorf("model answer is not the expected JSON: %w", err)
	}
	if ans.Items == nil {
		return nil, errors.New("model answer has no items")
	}
	out := make([]Candidate, 0, len(*ans.Items))
	for i, r := range *ans.Items {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(r, &fields); err != nil {
			return nil, fmt.Errorf("model answer item %d: %w", i, err)
		}
		for _, k := range []string{"existing_id", "title", "content", "category", "tags", "source_users"} {
			if _, ok := fields[k]; !ok {
				return nil, fmt.Errorf("model answer item %d has no %s", i, k)
			}
		}
		var c Candidate
		d := json.NewDecoder(bytes.NewReader(r))
		d.DisallowUnknownFields()
		if err := d.Decode(&c); err != nil {
			return nil, fmt.Errorf("model answer item %d: %w", i, err)
		}
		if strings.TrimSpace(c.Title) == "" || strings.TrimSpace(c.Content) == "" {
			return nil, fmt.Errorf("model answer item %d has an empty title or content", i)
		}
		if !ValidCategory(c.Category) {
			return nil, fmt.Errorf("model answer item %d has category %q, not one of %s", i, c.Category, strings.Join(Categories, ", "))
		}
		out = append(out, c)
	}
	return out, nil
}

// relevant picks the existing items sent with a batch: every item one of its users contributed
// to, then the items sharing the most words with the notes, up to Opts.MaxExisting. Rejected
// items are never sent.
func (s *Service) relevant(items []store.MemoryItem, batch []note) []store.MemoryItem {
	inBatch := map[string]bool{}
	words := map[string]bool{}
	for _, n := range batch {
		inBatch[n.email] = true
		for _, w := range tokens(n.text) {
			words[w] = true
		}
	}
	type scored struct {
		it    store.MemoryItem
		score int
	}
	var list []scored
	for _, it := range items {
		if it.Status == store.MemoryRejected {
			continue
		}
		sc := 0
		for _, u := range it.SourceUsers {
			if inBatch[u] {
				sc += 1000
			}
		}
		for _, w := range tokens(it.Title + " " + strings.Join(it.Tags, " ") + " " + it.Content) {
			if words[w] {
				sc++
			}
		}
		if sc > 0 {
			list = append(list, scored{it, sc})
		}
	}
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].score != list[j].score {
			return list[i].score > list[j].score
		}
		return list[i].it.ID < list[j].it.ID
	})
	var out []store.MemoryItem
	for _, x := range list {
		if len(out) >= s.Opts.MaxExisting {
			break
		}
		out = append(out, x.it)
	}
	return out
}

// tokens are the distinct lower-case words of at least 4 letters or digits.
func tokens(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }) {
		if len([]rune(w)) >= 4 && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

func (s *Service) prompt(batch []note, existing []store.MemoryItem, label map[string]string) string {
	var b strings.Builder
	b.WriteString("## Existing items\n")
	if len(existing) == 0 {
		b.WriteString("(none)\n")
	}
	for _, it := range existing {
		var src []string
		others := 0
		for _, u := range it.SourceUsers {
			if l, ok := label[u]; ok {
				src = append(src, l)
			} else {
				others++
			}
		}
		line, _ := json.Marshal(map[string]any{"id": it.ID, "title": it.Title, "content": it.Content, "category": it.Category,
			"tags": it.Tags, "source_users": src, "other_sources": others})
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString("\n## Notes\n")
	for _, n := range batch {
		fence := fenceFor(n.text)
		fmt.Fprintf(&b, "\n### User: %s\n%smarkdown\n%s\n%s\n", label[n.email], fence, strings.TrimRight(n.text, "\n"), fence)
	}
	return b.String()
}

// fenceFor returns a backtick fence longer than any run of backticks in text.
func fenceFor(text string) string {
	longest, run := 0, 0
	for _, r := range text {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// itemID is "km_" and the first 12 hex digits of sha256(title + content): the same text always
// gets the same id.
func itemID(title, content string) string {
	sum := sha256.Sum256([]byte(title + content))
	return "km_" + hex.EncodeToString(sum[:6])
}

func cleanTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" && len(out) < maxTags {
			out = append(out, cutRunes(t, 40))
		}
	}
	return sortedUnique(out)
}

func sortedUnique(list []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range list {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func cutRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// cutBytes cuts s to at most n bytes, at a line end when there is one in the last quarter.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	if i := strings.LastIndexByte(s, '\n'); i > n*3/4 {
		return s[:i]
	}
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
