package pull

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// rulePrefix marks the rule files that corporate memory owns in .claude/rules/; the analyst's
// own rules (any other name) are never touched.
const rulePrefix = "km_"

// installRules makes .claude/rules/km_*.md equal to the mirror's server/rules/km_*.md (the
// caller's upvoted and mandatory knowledge items): new and changed ones are written, the ones
// no longer in the view are removed.
func (p *puller) installRules() error {
	src := filepath.Join(p.dir, "server", "rules")
	dst := filepath.Join(p.dir, ".claude", "rules")
	want := map[string]bool{}
	entries, err := os.ReadDir(src)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, rulePrefix) || !strings.HasSuffix(name, ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		want[name] = true
		if err := writeIfChanged(filepath.Join(dst, name), b); err != nil {
			return err
		}
	}
	have, err := os.ReadDir(dst)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range have {
		name := e.Name()
		if strings.HasPrefix(name, rulePrefix) && strings.HasSuffix(name, ".md") && !want[name] {
			if err := os.Remove(filepath.Join(dst, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
