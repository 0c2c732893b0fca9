package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ai-data-analyst/analyst/internal/testenv"
)

// testServer is an `analyst serve` child process with an admin token.
type testServer struct {
	URL   string
	Token string
	Logs  *testenv.SyncBuffer
}

var servingURL = regexp.MustCompile(`msg=serving .*url=(http://[0-9.:]+)`)

// startServer runs `analyst --home home serve --addr 127.0.0.1:0 args...` with adminToken as
// ANALYST_ADMIN_TOKEN, waits until it serves, and stops it when the test ends.
func startServer(t *testing.T, home, adminToken string, args ...string) *testServer {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--home", home, "serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "ANALYST_ADMIN_TOKEN="+adminToken)
	s := &testServer{Token: adminToken, Logs: &testenv.SyncBuffer{}}
	cmd.Stderr = s.Logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for deadline := time.Now().Add(60 * time.Second); s.URL == ""; {
		if m := servingURL.FindStringSubmatch(s.Logs.String()); m != nil {
			s.URL = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve %v did not start:\n%s", args, s.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// call sends a JSON API request with token (the admin's when "").
func (s *testServer) call(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	if token == "" {
		token = s.Token
	}
	return testenv.Call(t, method, s.URL+path, token, strings.NewReader(body))
}

// ANALYST_PPROF_ADDR serves the runtime profiles on a loopback address only.
func TestProfilesListener(t *testing.T) {
	home := t.TempDir()
	t.Setenv("ANALYST_PPROF_ADDR", "0.0.0.0:0")
	waitLog := func(s *testServer, re *regexp.Regexp) []string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if m := re.FindStringSubmatch(s.Logs.String()); m != nil {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s in the log:\n%s", re, s.Logs.String())
			}
		}
	}
	s := startServer(t, home, "ada_pprof_test_token_0123456789abcdefghijklm")
	waitLog(s, regexp.MustCompile(`ANALYST_PPROF_ADDR must be a loopback address`))
	if strings.Contains(s.Logs.String(), "serving runtime profiles") {
		t.Fatal("profiles served on a non-loopback address")
	}
	t.Setenv("ANALYST_PPROF_ADDR", "127.0.0.1:0")
	s = startServer(t, t.TempDir(), "ada_pprof_test_token_0123456789abcdefghijklm")
	m := waitLog(s, regexp.MustCompile(`serving runtime profiles" url=(http://127\.0\.0\.1:[0-9]+/debug/pprof/)`))
	resp, err := http.Get(m[1] + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine profile") {
		t.Fatalf("profiles: %d %.200s", resp.StatusCode, b)
	}
}
