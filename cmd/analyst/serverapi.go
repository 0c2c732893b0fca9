package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// serverAPI is a running server's admin API: the way for commands that need the store (which
// the server holds) to act while it runs.
type serverAPI struct {
	url, token string
}

// runningServer is the server at server (default env ANALYST_SERVER, else the local
// ANALYST_ADDR), called with token (default env ANALYST_ADMIN_TOKEN).
func runningServer(server, token string) (*serverAPI, error) {
	if server == "" {
		server = envOr("ANALYST_SERVER", "http://"+envOr("ANALYST_ADDR", "127.0.0.1:8080"))
	}
	if token == "" {
		token = os.Getenv("ANALYST_ADMIN_TOKEN")
	}
	if token == "" {
		return nil, errors.New("the server is running and holds the store: this needs its API, with an admin token (--token or ANALYST_ADMIN_TOKEN)")
	}
	return &serverAPI{url: strings.TrimRight(server, "/"), token: token}, nil
}

// do sends method path with body as JSON and returns the reply (the caller closes it) when
// its status is 2xx; otherwise the server's error message.
func (s *serverAPI) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", s.url, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return nil, fmt.Errorf("server %s: %s", s.url, e.Error)
	}
	return resp, nil
}

// call is do for a JSON reply, decoded into out.
func (s *serverAPI) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := s.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}
