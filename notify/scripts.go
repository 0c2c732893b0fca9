package notify

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/schedule"
	"github.com/ai-data-analyst/analyst/store"
)

// Limits of uploaded scripts.
const (
	MaxScriptSize = 1 << 20
	MaxScripts    = 50 // per user
	// Names fit Telegram's 64-byte callback data as "run:<name>".
	maxNameLen = 60
)

var scriptNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// ValidName checks a script's file name: letters, digits, '.', '_' and '-', at most 60 bytes,
// not starting with a dot.
func ValidName(name string) error {
	if len(name) > maxNameLen || !scriptNameRE.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("script name %q: use letters, digits, '.', '_' and '-' (at most %d, not starting with a dot)", name, maxNameLen)
	}
	return nil
}

// Script is an analyst's notification script as uploaded, with what its header declares.
type Script struct {
	User     string        `json:"-"`
	Name     string        `json:"name"`
	Path     string        `json:"-"`
	Size     int64         `json:"size"`
	Modified time.Time     `json:"modified"`
	Depends  []string      `json:"depends,omitempty"`  // "# depends: orders, payments"
	Schedule string        `json:"schedule,omitempty"` // "# schedule: every 15m"
	Timeout  time.Duration `json:"-"`                  // "# timeout: 30s", at most the runner's limit
}

// Header lines are comment lines (#, // or --) among a script's first 30 lines.
var headerRE = regexp.MustCompile(`^\s*(?:#|//|--)\s*(depends|schedule|timeout)\s*:\s*(.*?)\s*$`)

// parseHeader reads what a script declares: the tables it depends on, its default schedule and
// its own time limit. A malformed declaration is an error naming the line.
func parseHeader(s *Script, content []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for line := 1; sc.Scan() && line <= 30; line++ {
		m := headerRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		switch m[1] {
		case "depends":
			for _, t := range strings.FieldsFunc(m[2], func(r rune) bool { return r == ',' || r == ' ' }) {
				s.Depends = append(s.Depends, t)
			}
		case "schedule":
			if _, err := schedule.Parse(m[2]); err != nil {
				return fmt.Errorf("%s line %d: %w", s.Name, line, err)
			}
			s.Schedule = m[2]
		case "timeout":
			d, err := time.ParseDuration(m[2])
			if err != nil || d <= 0 {
				return fmt.Errorf("%s line %d: timeout %q is not a duration such as 30s", s.Name, line, m[2])
			}
			s.Timeout = d
		}
	}
	return nil
}

// DependsOn reports whether the script declared table (case-insensitive).
func (s *Script) DependsOn(table string) bool {
	for _, d := range s.Depends {
		if strings.EqualFold(d, table) {
			return true
		}
	}
	return false
}

// Scripts keeps each user's scripts under root/<user>/<name>.
type Scripts struct{ root string }

// NewScripts returns the script folder at root.
func NewScripts(root string) *Scripts { return &Scripts{root: root} }

var plainUser = regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]*$`)

// userDir is a user's folder: the email when it is a plain one, else a hash of it.
func (s *Scripts) userDir(user string) string {
	if plainUser.MatchString(user) && len(user) <= 200 {
		return filepath.Join(s.root, user)
	}
	sum := sha256.Sum256([]byte(user))
	return filepath.Join(s.root, "u-"+hex.EncodeToString(sum[:12]))
}

// List returns a user's scripts by name. Files whose header cannot be read are listed with the
// error in errs, so the portal shows them.
func (s *Scripts) List(user string) (scripts []*Script, errs map[string]error, err error) {
	entries, err := os.ReadDir(s.userDir(user))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	errs = map[string]error{}
	for _, e := range entries {
		if !e.Type().IsRegular() || ValidName(e.Name()) != nil {
			continue
		}
		sc, err := s.Load(user, e.Name())
		if err != nil {
			errs[e.Name()] = err
			sc = &Script{User: user, Name: e.Name(), Path: filepath.Join(s.userDir(user), e.Name())}
		}
		scripts = append(scripts, sc)
	}
	sort.Slice(scripts, func(i, j int) bool { return scripts[i].Name < scripts[j].Name })
	return scripts, errs, nil
}

// Load reads one script; store.ErrNotFound when it does not exist.
func (s *Scripts) Load(user, name string) (*Script, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	p := filepath.Join(s.userDir(user), name)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("script %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	head := make([]byte, 16<<10)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	sc := &Script{User: user, Name: name, Path: p, Size: fi.Size(), Modified: fi.ModTime().UTC()}
	return sc, parseHeader(sc, head[:n])
}

// Put stores a script (atomically, executable by the server's user only). Its header must parse.
func (s *Scripts) Put(user, name string, content []byte) (*Script, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if len(content) > MaxScriptSize {
		return nil, fmt.Errorf("script %s is %d bytes; the limit is %d", name, len(content), MaxScriptSize)
	}
	if err := parseHeader(&Script{Name: name}, content); err != nil {
		return nil, err
	}
	dir := s.userDir(user)
	if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
		entries, _ := os.ReadDir(dir)
		if len(entries) >= MaxScripts {
			return nil, fmt.Errorf("you have %d scripts; the limit is %d", len(entries), MaxScripts)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	err := store.WriteFileAtomic(filepath.Join(dir, name), 0o700, func(w io.Writer) error {
		_, err := w.Write(content)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.Load(user, name)
}

// Delete removes a script; store.ErrNotFound when there is none.
func (s *Scripts) Delete(user, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(s.userDir(user), name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("script %s: %w", name, store.ErrNotFound)
	}
	return err
}
