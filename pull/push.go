package pull

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

// pushChunk is the most one POST carries (the server accepts up to 8 MiB).
const pushChunk = 4 << 20

var sessionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.jsonl$`)

// PushResult is what a push sent.
type PushResult struct {
	Sessions       int      `json:"sessions"` // transcripts that grew on the server
	Bytes          int64    `json:"bytes"`
	ClaudeLocal    bool     `json:"claude_local"`         // a new CLAUDE.local.md version was stored
	Scripts        int      `json:"notification_scripts"` // user/notifications/ scripts uploaded
	ScriptsDeleted int      `json:"notification_scripts_deleted"`
	Warnings       []string `json:"warnings,omitempty"`
}

// Summary is the one-line account of a push.
func (r *PushResult) Summary() string {
	s := fmt.Sprintf("pushed %d session files (%s)", r.Sessions, humanBytes(r.Bytes))
	if r.ClaudeLocal {
		s += " and CLAUDE.local.md"
	}
	if r.Scripts > 0 || r.ScriptsDeleted > 0 {
		s += fmt.Sprintf("; %d notification scripts (%d deleted on the server)", r.Scripts, r.ScriptsDeleted)
	}
	return s
}

// Push uploads the workspace's user/sessions/*.jsonl (only what the server does not have yet:
// transcripts only grow) and CLAUDE.local.md. It reads the workspace and changes nothing in it.
func Push(ctx context.Context, opts Options) (*PushResult, error) {
	p, err := newPuller(opts)
	if err != nil {
		return nil, err
	}
	res := &PushResult{}
	var held struct {
		Files map[string]int64 `json:"files"`
	}
	if err := p.retry(ctx, "session list", func() error { return p.call(ctx, http.MethodGet, "/api/push/sessions", nil, &held) }); err != nil {
		return nil, fmt.Errorf("list pushed sessions: %w", err)
	}
	dir := filepath.Join(p.dir, "user", "sessions")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !sessionName.MatchString(name) {
			continue
		}
		sent, err := p.pushSession(ctx, filepath.Join(dir, name), name, held.Files[name])
		if err != nil {
			return res, fmt.Errorf("push %s: %w", name, err)
		}
		if sent < 0 {
			res.Warnings = append(res.Warnings, name+": the server holds more than this file has; a transcript only grows, so it was left as is")
			continue
		}
		if sent > 0 {
			res.Sessions++
			res.Bytes += sent
		}
	}
	notes, err := os.ReadFile(filepath.Join(p.dir, "CLAUDE.local.md"))
	if err == nil {
		var reply struct {
			Stored bool `json:"stored"`
		}
		err = p.retry(ctx, "CLAUDE.local.md", func() error {
			return p.call(ctx, http.MethodPost, "/api/push/claude-local", notes, &reply)
		})
		if err != nil {
			return res, fmt.Errorf("push CLAUDE.local.md: %w", err)
		}
		res.ClaudeLocal = reply.Stored
	}
	if err := p.pushNotifications(ctx, res); err != nil {
		return res, err
	}
	return res, nil
}

// pushSession sends the part of a transcript past what the server holds; -1 means the server
// holds more than the file has.
func (p *puller) pushSession(ctx context.Context, path, name string, offset int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size() // what grows while we push goes next time
	if size < offset {
		return -1, nil
	}
	start := offset
	buf := make([]byte, pushChunk)
	for offset < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-offset)], offset)
		if err != nil && !errors.Is(err, io.EOF) {
			return offset - start, err
		}
		var reply struct {
			Size int64 `json:"size"`
		}
		err = p.retry(ctx, name, func() error {
			return p.call(ctx, http.MethodPost, "/api/push/sessions/"+name+"?offset="+strconv.FormatInt(offset, 10), buf[:n], &reply)
		})
		var he *httpError
		if errors.As(err, &he) && he.status == http.StatusConflict {
			// Another push got there first: continue from what the server holds.
			if reply.Size > size {
				return -1, nil
			}
			offset = reply.Size
			continue
		}
		if err != nil {
			return offset - start, err
		}
		offset = reply.Size
	}
	return offset - start, nil
}

// call sends a request with the token and decodes a JSON reply into out (also on a 409).
func (p *puller) call(ctx context.Context, method, rel string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, p.server.String()+rel, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.opts.Token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		json.Unmarshal(b, out)
		return &httpError{status: resp.StatusCode, msg: string(b)}
	}
	if resp.StatusCode != http.StatusOK {
		err := replyError(resp)
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return fmt.Errorf("%w: %w", errPermanent, err)
		}
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
