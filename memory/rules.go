package memory

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ai-data-analyst/analyst/store"
)

// RulesDir is where rule files go in the manifest (under the mirror's server/ folder); `analyst
// pull` installs them as .claude/rules/km_<id>.md and removes the km_ files no longer listed.
const RulesDir = "rules"

// RuleFile is one rule file of a user's manifest.
type RuleFile struct {
	Name    string // km_<id>.md
	Content []byte
}

// Rules returns the rule files of a user: every published item they upvoted, and every
// mandatory one, sorted by name.
func (s *Service) Rules(email string) ([]RuleFile, error) {
	items, err := s.Mem.Items()
	if err != nil {
		return nil, err
	}
	votes, err := s.Mem.UserVotes(email)
	if err != nil {
		return nil, err
	}
	var out []RuleFile
	for _, it := range items {
		if it.Status == store.MemoryPublished && (it.Mandatory || votes[it.ID] > 0) {
			out = append(out, RuleFile{Name: it.ID + ".md", Content: RenderRule(it)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Rule returns one of a user's rule files by name, if it is theirs.
func (s *Service) Rule(email, name string) (RuleFile, bool, error) {
	rules, err := s.Rules(email)
	for _, r := range rules {
		if r.Name == name {
			return r, true, err
		}
	}
	return RuleFile{}, false, err
}

// RenderRule writes an item as a rule file: title, category, tags, the content and its origin.
func RenderRule(it store.MemoryItem) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n**Category:** %s\n**Tags:** %s\n", oneLine(it.Title), it.Category, strings.Join(it.Tags, ", "))
	if it.Mandatory {
		b.WriteString("**Mandatory:** yes\n")
	}
	fmt.Fprintf(&b, "\n---\n\n%s\n\n---\n*Source: Corporate Memory (ID: %s)*\n", strings.TrimSpace(it.Content), it.ID)
	return []byte(b.String())
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
