// Package keboola owns the Keboola Storage API connector: table metadata and the type cascade of
// column metadata, asynchronous table exports with job polling, and the download of the exported
// files (sliced or not) from AWS S3, Google Cloud Storage or Azure Blob Storage with the temporary
// credentials Keboola hands out. It registers itself as the "keboola" data source.
package keboola

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	connectors.Register("keboola", func(s connectors.Settings) (connectors.Connector, error) {
		var set Settings
		if err := s.Decode(&set); err != nil {
			return nil, err
		}
		return New(set, Options{})
	})
}

// Settings is the data_source.keboola block of instance.yaml.
type Settings struct {
	StackURL     string `yaml:"stack_url" json:"stack_url"`         // e.g. https://connection.keboola.com
	StorageToken string `yaml:"storage_token" json:"storage_token"` // ${KEBOOLA_STORAGE_TOKEN}
	ProjectID    string `yaml:"project_id" json:"project_id"`
	// JobTimeout bounds one export job ("2h" when empty), as a Go duration.
	JobTimeout string `yaml:"job_timeout,omitempty" json:"job_timeout,omitempty"`
}

// Options tune the client; zero values take the defaults. Tests shrink the durations.
type Options struct {
	HTTPClient     *http.Client  // default: a client with sane transport timeouts
	Logger         *slog.Logger  // default: slog.Default()
	RequestTimeout time.Duration // per API request attempt (default 2m)
	StallTimeout   time.Duration // a download attempt fails when no byte arrives for this long (default 2m)
	MaxRetries     int           // retries after the first attempt (default 6); -1 means none
	RetryBase      time.Duration // first backoff (default 1s), doubling per retry
	RetryMax       time.Duration // cap of one backoff and of a server's Retry-After (default 2m)
	PollMin        time.Duration // first job poll interval (default 1s)
	PollMax        time.Duration // longest job poll interval (default 15s)
	JobTimeout     time.Duration // overall limit for one export job (default 2h)
	Parallel       int           // slices downloaded at once (default 4)
	// S3Endpoint and GCSEndpoint replace the public endpoints (default: env AWS_ENDPOINT_URL_S3 or
	// AWS_ENDPOINT_URL, and STORAGE_EMULATOR_HOST). An S3 endpoint is addressed path-style.
	S3Endpoint  string
	GCSEndpoint string
}

func (o *Options) defaults() {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 2 * time.Minute,
		}, CheckRedirect: keepTokenOnHost}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RequestTimeout, 2*time.Minute)
	def(&o.StallTimeout, 2*time.Minute)
	def(&o.RetryBase, time.Second)
	def(&o.RetryMax, 2*time.Minute)
	def(&o.PollMin, time.Second)
	def(&o.PollMax, 15*time.Second)
	def(&o.JobTimeout, 2*time.Hour)
	if o.MaxRetries == 0 {
		o.MaxRetries = 6
	} else if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.S3Endpoint == "" {
		o.S3Endpoint = firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	}
	if o.GCSEndpoint == "" {
		o.GCSEndpoint = os.Getenv("STORAGE_EMULATOR_HOST")
	}
}

// keepTokenOnHost follows redirects but never carries the storage token to another host
// (net/http only strips Authorization and Cookie by itself).
func keepTokenOnHost(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("X-StorageApi-Token")
	}
	return nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// Client talks to one Keboola project. It implements connectors.Connector.
type Client struct {
	base      *url.URL // stack URL without a trailing slash
	token     string
	projectID string
	opt       Options
	log       *slog.Logger
}

var _ connectors.Connector = (*Client)(nil)

// New checks the settings and builds a client. One error lists every missing setting.
func New(s Settings, opt Options) (*Client, error) {
	var missing []string
	if strings.TrimSpace(s.StackURL) == "" {
		missing = append(missing, "stack_url")
	}
	if strings.TrimSpace(s.StorageToken) == "" {
		missing = append(missing, "storage_token")
	}
	if strings.TrimSpace(s.ProjectID) == "" {
		missing = append(missing, "project_id")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("data_source.keboola: missing %s", strings.Join(missing, ", "))
	}
	raw := strings.TrimRight(strings.TrimSpace(s.StackURL), "/")
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	base, err := url.Parse(raw)
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("data_source.keboola: stack_url %q is not an http(s) URL", s.StackURL)
	}
	if s.JobTimeout != "" && opt.JobTimeout == 0 {
		d, err := time.ParseDuration(s.JobTimeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("data_source.keboola: job_timeout %q is not a positive duration such as 2h or 90m", s.JobTimeout)
		}
		opt.JobTimeout = d
	}
	opt.defaults()
	return &Client{
		base:      base,
		token:     strings.TrimSpace(s.StorageToken),
		projectID: strings.TrimSpace(s.ProjectID),
		opt:       opt,
		log:       opt.Logger.With("connector", "keboola", "stack", base.Host),
	}, nil
}

// Check lists the project's buckets, which proves the stack URL and the token work.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.ListBuckets(ctx)
	return err
}

// Extract exports the table (rows changed within the request's window, where_filters applied)
// and downloads it into StagingDir. The files have no header; Columns names them.
func (c *Client) Extract(ctx context.Context, req connectors.ExtractRequest) (*connectors.Extraction, error) {
	ext, err := c.extract(ctx, req)
	if err != nil {
		return nil, c.redact(fmt.Errorf("keboola: table %s: %w", req.Table.ID, err))
	}
	return ext, nil
}

func (c *Client) extract(ctx context.Context, req connectors.ExtractRequest) (*connectors.Extraction, error) {
	id := req.Table.ID
	if id == "" {
		return nil, errors.New("no table id")
	}
	if req.StagingDir == "" {
		return nil, errors.New("no staging directory")
	}
	if err := os.MkdirAll(req.StagingDir, 0o755); err != nil {
		return nil, err
	}
	started := time.Now()
	table, err := c.table(ctx, id)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(table.Columns))
	for i, col := range table.Columns {
		names[i] = col.Name
	}
	jobID, err := c.startExport(ctx, id, exportParams{
		ChangedSince: req.ChangedSince,
		ChangedUntil: req.ChangedUntil,
		WhereFilters: req.Table.WhereFilters,
		Columns:      names,
	})
	if err != nil {
		return nil, err
	}
	fileID, err := c.waitJob(ctx, id, jobID)
	if err != nil {
		return nil, err
	}
	files, bytes, err := c.download(ctx, id, fileID, req.StagingDir, req.Progress)
	if err != nil {
		return nil, err
	}
	c.log.Info("keboola export downloaded", "table", id, "job", jobID, "file", fileID,
		"files", len(files), "bytes", bytes, "took", time.Since(started).Round(time.Millisecond))
	return &connectors.Extraction{
		Files:     files,
		Format:    store.CSVFormat{Delimiter: ',', Quote: '"', Header: false, Encoding: "utf-8"},
		Columns:   table.Columns,
		Temporary: true,
	}, nil
}
