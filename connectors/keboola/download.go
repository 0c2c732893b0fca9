package keboola

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// fileJSON is GET /v2/storage/files/{id}?federationToken=1: where the export is and the
// short-lived credentials to read it.
type fileJSON struct {
	ID          flexString `json:"id"`
	Name        string     `json:"name"`
	URL         string     `json:"url"` // pre-signed; for a sliced file on AWS and GCP, the manifest
	Provider    string     `json:"provider"`
	Region      string     `json:"region"`
	IsSliced    bool       `json:"isSliced"`
	SizeBytes   flexInt    `json:"sizeBytes"`
	Credentials *struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
		SessionToken    string `json:"SessionToken"`
	} `json:"credentials"`
	S3Path *struct {
		Bucket string `json:"bucket"`
		Key    string `json:"key"`
	} `json:"s3Path"`
	AbsCredentials *struct {
		SASConnectionString string `json:"SASConnectionString"`
	} `json:"absCredentials"`
	AbsPath *struct {
		Container string `json:"container"`
		Name      string `json:"name"`
	} `json:"absPath"`
	GcsCredentials *struct {
		AccessToken string `json:"access_token"`
	} `json:"gcsCredentials"`
	GcsPath *struct {
		Bucket string `json:"bucket"`
		Key    string `json:"key"`
	} `json:"gcsPath"`
}

// object is one downloadable blob: its URL and how to authenticate a GET of it.
type object struct {
	url     string
	header  http.Header
	sign    func(*http.Request) error
	size    int64    // expected bytes; 0 = unknown
	secrets []string // credentials in the URL or headers, kept out of logs and errors
}

// cloudStore reads objects of one cloud with the credentials of the file detail.
type cloudStore interface {
	manifest() (object, error)
	entry(rawURL string) (object, error) // a manifest entry
	whole() (object, error)              // a non-sliced file
	secrets() []string
}

// download fetches the exported file into dir and returns the local files in manifest order.
// On failure nothing it created is left behind.
func (c *Client) download(ctx context.Context, tableID, fileID, dir string, progress func(int64)) (files []string, total int64, err error) {
	var f fileJSON
	u := c.apiURL("/v2/storage/files/"+url.PathEscape(fileID), url.Values{"federationToken": {"1"}})
	if err := c.do(ctx, call{method: http.MethodGet, url: u, header: c.authHeader(), read: decodeJSON(u, &f)}); err != nil {
		return nil, 0, err
	}
	cs, err := c.cloud(&f)
	if err != nil {
		return nil, 0, fmt.Errorf("file %s: %w", fileID, err)
	}
	defer func() { err = redactSecrets(err, cs.secrets()...) }()

	var objs []object
	if f.IsSliced {
		if objs, err = c.readManifest(ctx, cs); err != nil {
			return nil, 0, fmt.Errorf("manifest of file %s: %w", fileID, err)
		}
	} else {
		o, err := cs.whole()
		if err != nil {
			return nil, 0, fmt.Errorf("file %s: %w", fileID, err)
		}
		o.size = int64(f.SizeBytes)
		objs = []object{o}
	}
	c.log.Debug("keboola export file", "table", tableID, "file", fileID, "provider", f.Provider,
		"sliced", f.IsSliced, "objects", len(objs))

	files, err = reserveFiles(dir, tableID, objs)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if err != nil {
			for _, p := range files {
				os.Remove(p)
			}
			files = nil
		}
	}()
	total, err = c.fetchAll(ctx, objs, files, progress)
	if err != nil {
		return files, 0, fmt.Errorf("download of file %s: %w", fileID, err)
	}
	return files, total, nil
}

// reserveFiles creates one empty local file per object (at least one, so an empty export is an
// empty file), named so that they sort in manifest order.
func reserveFiles(dir, tableID string, objs []object) ([]string, error) {
	var rnd [4]byte
	rand.Read(rnd[:])
	prefix := "kbc-" + safeName(tableID) + "-" + hex.EncodeToString(rnd[:]) + "-"
	n := max(len(objs), 1)
	files := make([]string, 0, n)
	for i := range n {
		ext := ".csv"
		if i < len(objs) && strings.HasSuffix(strings.SplitN(objs[i].url, "?", 2)[0], ".gz") {
			ext = ".csv.gz"
		}
		p := filepath.Join(dir, fmt.Sprintf("%s%05d%s", prefix, i, ext))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			for _, q := range files {
				os.Remove(q)
			}
			return nil, err
		}
		f.Close()
		files = append(files, p)
	}
	return files, nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// fetchAll downloads objs[i] into files[i], Parallel at a time; the first error stops the rest.
func (c *Client) fetchAll(ctx context.Context, objs []object, files []string, progress func(int64)) (int64, error) {
	var mu sync.Mutex
	report := func(n int64) {
		if progress != nil {
			mu.Lock()
			progress(n)
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		total    atomic.Int64
		once     sync.Once
		firstErr error
		sem      = make(chan struct{}, c.opt.Parallel)
	)
	for i, o := range objs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			n, err := c.fetch(ctx, o, files[i], report)
			if err != nil {
				once.Do(func() {
					if len(objs) > 1 {
						err = fmt.Errorf("slice %d of %d: %w", i+1, len(objs), err)
					}
					firstErr = err
					cancel()
				})
				return
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return total.Load(), firstErr
}

// fetch streams one object to path, starting over on a retried attempt, and checks its size.
func (c *Client) fetch(ctx context.Context, o object, path string, report func(int64)) (int64, error) {
	var written int64
	err := c.do(ctx, call{method: http.MethodGet, url: o.url, header: o.header, sign: o.sign, stream: true, secrets: o.secrets,
		read: func(resp *http.Response, body io.Reader) error {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			written, err = io.Copy(f, &countingReader{r: body, report: report})
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if resp.Uncompressed { // transport-level gzip was undone; sizes refer to the encoded bytes
				return nil
			}
			if resp.ContentLength >= 0 && written != resp.ContentLength {
				return retryable{fmt.Errorf("%s: got %d of %d bytes", where(o.url), written, resp.ContentLength)}
			}
			if o.size > 0 && written != o.size {
				return retryable{fmt.Errorf("%s: got %d bytes, expected %d", where(o.url), written, o.size)}
			}
			return nil
		}})
	return written, err
}

type countingReader struct {
	r      io.Reader
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.report(int64(n))
	}
	return n, err
}

// readManifest reads a sliced file's manifest and resolves its entries, in order.
func (c *Client) readManifest(ctx context.Context, cs cloudStore) ([]object, error) {
	mo, err := cs.manifest()
	if err != nil {
		return nil, err
	}
	var m struct {
		Entries []struct {
			URL  string `json:"url"`
			Meta *struct {
				ContentLength flexInt `json:"content_length"`
			} `json:"meta"`
		} `json:"entries"`
	}
	err = c.do(ctx, call{method: http.MethodGet, url: mo.url, header: mo.header, sign: mo.sign, secrets: cs.secrets(),
		read: func(_ *http.Response, body io.Reader) error {
			b, err := io.ReadAll(io.LimitReader(body, 64<<20))
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &m); err != nil {
				return fmt.Errorf("unreadable manifest: %v", err)
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	objs := make([]object, 0, len(m.Entries))
	for _, e := range m.Entries {
		o, err := cs.entry(e.URL)
		if err != nil {
			return nil, err
		}
		if e.Meta != nil {
			o.size = int64(e.Meta.ContentLength)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// cloud picks the store for the file's provider.
func (c *Client) cloud(f *fileJSON) (cloudStore, error) {
	switch f.Provider {
	case "aws", "":
		if f.Credentials == nil {
			return nil, errors.New("no AWS credentials in the file detail (federationToken)")
		}
		region := f.Region
		if region == "" {
			region = "us-east-1"
		}
		return &s3Store{f: f, region: region, endpoint: c.opt.S3Endpoint, creds: aws.Credentials{
			AccessKeyID: f.Credentials.AccessKeyID, SecretAccessKey: f.Credentials.SecretAccessKey,
			SessionToken: f.Credentials.SessionToken, Source: "keboola"}}, nil
	case "gcp":
		if f.GcsCredentials == nil || f.GcsCredentials.AccessToken == "" {
			return nil, errors.New("no GCS credentials in the file detail (federationToken)")
		}
		base := "https://storage.googleapis.com"
		if h := c.opt.GCSEndpoint; h != "" {
			base = strings.TrimRight(h, "/")
			if !strings.Contains(base, "://") {
				base = "http://" + base
			}
		}
		return &gcsStore{f: f, base: base}, nil
	case "azure":
		if f.AbsCredentials == nil || f.AbsPath == nil {
			return nil, errors.New("no Azure credentials in the file detail (federationToken)")
		}
		endpoint, sas, err := parseSAS(f.AbsCredentials.SASConnectionString)
		if err != nil {
			return nil, err
		}
		return &azureStore{f: f, endpoint: endpoint, sas: sas}, nil
	}
	return nil, fmt.Errorf("unknown file provider %q", f.Provider)
}

// escapePath percent-encodes every byte of a key but RFC 3986 unreserved ones and '/', the way
// S3, GCS and Azure expect an object name in a URL path.
func escapePath(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' ||
			ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '/' {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

// splitBucketURL splits scheme://bucket/key.
func splitBucketURL(raw, scheme string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(raw, scheme+"://")
	if !ok {
		return "", "", fmt.Errorf("manifest entry %q is not a %s:// URL", redactQuery(raw), scheme)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" || key == "" {
		return "", "", fmt.Errorf("manifest entry %q has no bucket or key", redactQuery(raw))
	}
	return bucket, key, nil
}

func redactQuery(raw string) string { return strings.SplitN(raw, "?", 2)[0] }

// s3Store reads S3 objects with GETs signed by SigV4 and the temporary credentials.
type s3Store struct {
	f        *fileJSON
	region   string
	endpoint string // path-style endpoint override (tests, S3-compatible stores)
	creds    aws.Credentials
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func (s *s3Store) object(bucket, key string) object {
	u := "https://" + bucket + ".s3." + s.region + ".amazonaws.com/" + escapePath(key)
	if s.endpoint != "" {
		u = strings.TrimRight(s.endpoint, "/") + "/" + bucket + "/" + escapePath(key)
	}
	signer := v4.NewSigner()
	return object{url: u, secrets: s.secrets(), sign: func(req *http.Request) error {
		req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		return signer.SignHTTP(req.Context(), s.creds, req, emptySHA256, "s3", s.region, time.Now(),
			func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	}}
}

func (s *s3Store) manifest() (object, error) {
	if s.f.URL == "" {
		return object{}, errors.New("no manifest URL")
	}
	return object{url: s.f.URL}, nil // pre-signed
}

func (s *s3Store) entry(raw string) (object, error) {
	bucket, key, err := splitBucketURL(raw, "s3")
	if err != nil {
		return object{}, err
	}
	return s.object(bucket, key), nil
}

func (s *s3Store) whole() (object, error) {
	if s.f.S3Path == nil {
		return object{}, errors.New("no s3Path in the file detail")
	}
	return s.object(s.f.S3Path.Bucket, s.f.S3Path.Key), nil
}

func (s *s3Store) secrets() []string {
	return []string{s.creds.SecretAccessKey, s.creds.SessionToken}
}

// gcsStore reads GCS objects with the OAuth access token Keboola hands out.
type gcsStore struct {
	f    *fileJSON
	base string
}

func (g *gcsStore) object(bucket, key string) object {
	return object{url: g.base + "/" + bucket + "/" + escapePath(key), secrets: g.secrets(),
		header: http.Header{"Authorization": {"Bearer " + g.f.GcsCredentials.AccessToken}}}
}

func (g *gcsStore) manifest() (object, error) {
	if g.f.URL == "" {
		return object{}, errors.New("no manifest URL")
	}
	return object{url: g.f.URL}, nil // pre-signed
}

func (g *gcsStore) entry(raw string) (object, error) {
	if rest, ok := strings.CutPrefix(raw, "https://storage.googleapis.com/"); ok {
		raw = "gs://" + rest
	}
	bucket, key, err := splitBucketURL(raw, "gs")
	if err != nil {
		return object{}, err
	}
	return g.object(bucket, key), nil
}

func (g *gcsStore) whole() (object, error) {
	if g.f.GcsPath == nil {
		return object{}, errors.New("no gcsPath in the file detail")
	}
	return g.object(g.f.GcsPath.Bucket, g.f.GcsPath.Key), nil
}

func (g *gcsStore) secrets() []string { return []string{g.f.GcsCredentials.AccessToken} }

// azureStore reads blobs with the SAS of the file's connection string.
type azureStore struct {
	f        *fileJSON
	endpoint string // BlobEndpoint without a trailing slash
	sas      string // query string
}

// parseSAS reads BlobEndpoint and SharedAccessSignature from an Azure connection string.
func parseSAS(conn string) (endpoint, sas string, err error) {
	for part := range strings.SplitSeq(conn, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(k) {
		case "blobendpoint":
			endpoint = strings.TrimRight(v, "/")
		case "sharedaccesssignature":
			sas = strings.TrimPrefix(v, "?")
		}
	}
	if endpoint == "" || sas == "" {
		return "", "", errors.New("the Azure SAS connection string lacks BlobEndpoint or SharedAccessSignature")
	}
	return endpoint, sas, nil
}

func (a *azureStore) object(container, blob string) object {
	return object{url: a.endpoint + "/" + container + "/" + escapePath(blob) + "?" + a.sas,
		header: http.Header{"X-Ms-Version": {"2021-08-06"}}, secrets: a.secrets()}
}

func (a *azureStore) manifest() (object, error) {
	return a.object(a.f.AbsPath.Container, a.f.AbsPath.Name+"manifest"), nil
}

// entry maps azure://<account>.blob.core.windows.net/<container>/<blob> to the SAS endpoint.
func (a *azureStore) entry(raw string) (object, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Path == "" {
		return object{}, fmt.Errorf("manifest entry %q is not a blob URL", redactQuery(raw))
	}
	container, blob, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if container == "" || blob == "" {
		return object{}, fmt.Errorf("manifest entry %q has no container or blob", redactQuery(raw))
	}
	return a.object(container, blob), nil
}

func (a *azureStore) whole() (object, error) {
	return a.object(a.f.AbsPath.Container, a.f.AbsPath.Name), nil
}

// secrets are the SAS as sent and its signature both encoded and decoded (a service echoing it
// back may use either form).
func (a *azureStore) secrets() []string {
	out := []string{a.f.AbsCredentials.SASConnectionString, a.sas}
	if q, err := url.ParseQuery(a.sas); err == nil && q.Get("sig") != "" {
		out = append(out, q.Get("sig"), url.QueryEscape(q.Get("sig")))
	}
	return out
}
