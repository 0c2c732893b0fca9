package keboola

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	c := &Client{opt: Options{RetryMax: time.Minute}}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"3600":                          time.Minute, // capped
		"0":                             time.Millisecond,
		"Sat, 01 Mar 2025 12:00:20 GMT": 20 * time.Second,
		"Sat, 01 Mar 2025 11:00:00 GMT": time.Millisecond, // already past
		"soon":                          0,
	} {
		if got := c.retryAfter(h, now); got != want {
			t.Errorf("Retry-After %q: %s, want %s", h, got, want)
		}
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	c := &Client{opt: Options{RetryBase: 100 * time.Millisecond, RetryMax: time.Second}}
	for attempt, lo := range []time.Duration{50, 100, 200, 400, 500, 500} {
		lo *= time.Millisecond
		for range 20 {
			d := c.backoff(attempt)
			if d < lo || d > 2*lo {
				t.Fatalf("attempt %d: %s outside [%s, %s]", attempt, d, lo, 2*lo)
			}
		}
	}
}

func TestMapType(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"NUMERIC", "38,0"}:      "DECIMAL(38,0)",
		{"numeric", "12, 3"}:     "DECIMAL(12,3)",
		{"NUMERIC", "10"}:        "DECIMAL(10,0)",
		{"NUMERIC", ""}:          "NUMERIC",
		{"NUMERIC", "2,5"}:       "NUMERIC", // scale above precision is not a decimal
		{"NUMERIC", "76,2"}:      "NUMERIC", // beyond a 128-bit decimal
		{"NUMBER(18,6)", ""}:     "DECIMAL(18,6)",
		{"DECIMAL(9,2)", "12,4"}: "DECIMAL(12,4)", // KBC.datatype.length wins
		{"FLOAT", ""}:            "NUMERIC",
		{"BIGINT", ""}:           "INTEGER",
		{"varchar(255)", ""}:     "STRING",
		{"BOOL", ""}:             "BOOLEAN",
		{"DATE", ""}:             "DATE",
		{"DATETIME", ""}:         "TIMESTAMP",
		{"TIMESTAMP_NTZ(9)", ""}: "TIMESTAMP_NTZ",
		{"TIMESTAMP_LTZ", ""}:    "TIMESTAMP_TZ",
		{"VARIANT", ""}:          "STRING",
	} {
		if got := mapType(in[0], in[1]); got != want {
			t.Errorf("mapType(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

func TestParseSAS(t *testing.T) {
	ep, sas, err := parseSAS("BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2021&sig=a%2Bb")
	if err != nil || ep != "https://acct.blob.core.windows.net" || sas != "sv=2021&sig=a%2Bb" {
		t.Fatalf("%q %q %v", ep, sas, err)
	}
	if _, _, err := parseSAS("AccountName=x;AccountKey=y"); err == nil {
		t.Fatal("a connection string without SAS was accepted")
	}
}

func TestEscapePath(t *testing.T) {
	if got := escapePath("exp/a b+c=d(1).csv.gz"); got != "exp/a%20b%2Bc%3Dd%281%29.csv.gz" {
		t.Fatal(got)
	}
}

func TestAPIErrorShapes(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":"Invalid access token","code":401,"status":"error"}`:                       "GET h/p: HTTP 401 Unauthorized: Invalid access token (401)",
		`{"error":"Bad","message":"column x missing","code":"storage.x"}`:                    "GET h/p: HTTP 401 Unauthorized: Bad: column x missing (storage.x)",
		`{"error":{"code":401,"message":"Invalid Credentials"}}`:                             "GET h/p: HTTP 401 Unauthorized: Invalid Credentials",
		`<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>No</Message></Error>`: "GET h/p: HTTP 401 Unauthorized: No (AccessDenied)",
		`upstream broke`: "GET h/p: HTTP 401 Unauthorized: upstream broke",
	} {
		resp := &http.Response{StatusCode: 401, Body: io.NopCloser(strings.NewReader(body))}
		if got := readAPIError("GET", "http://h/p?sig=secret", resp).Error(); got != want {
			t.Errorf("%s:\n got %s\nwant %s", body, got, want)
		}
	}
}
