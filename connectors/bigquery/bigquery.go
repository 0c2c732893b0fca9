// Package bigquery is the "bigquery" data-source connector, on the official
// cloud.google.com/go/bigquery client. A table is read whole straight from storage (tabledata.list,
// or the Storage Read API when it is available: neither costs query bytes); an incremental window
// on a table's partition_by column becomes a parameterized query, first dry-run so that a query
// that would scan more than max_bytes is refused before it costs anything. Rows are streamed into
// a CSV file in the staging folder with typed columns, so memory stays bounded.
//
// Settings (data_source.bigquery in instance.yaml):
//
//	project:          billing and default project (required)
//	dataset:          default dataset of table ids without one (required)
//	credentials_file: service-account JSON key; empty means application default credentials
//	                  (GKE/GCE workload identity, GOOGLE_APPLICATION_CREDENTIALS)
//	location:         job location, e.g. EU (default: the dataset's)
//	max_bytes:        refuse queries that would process more, e.g. 50GB (default: no limit)
//	storage_api:      false to always read over REST (default true, with REST as fallback)
//	endpoint:         REST endpoint of an emulator; no credentials are sent then
//
// A table id is "dataset.table" or "project.dataset.table"; a bare "table" uses dataset.
package bigquery

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	connectors.Register("bigquery", func(s connectors.Settings) (connectors.Connector, error) {
		var set Settings
		if err := s.Decode(&set); err != nil {
			return nil, err
		}
		if set.CredentialsFile != "" && !filepath.IsAbs(set.CredentialsFile) {
			set.CredentialsFile = filepath.Join(s.Dir(), set.CredentialsFile)
		}
		return New(context.Background(), set, Options{})
	})
}

// Settings is the data_source.bigquery block.
type Settings struct {
	Project         string `yaml:"project"`
	Dataset         string `yaml:"dataset"`
	CredentialsFile string `yaml:"credentials_file"`
	Location        string `yaml:"location"`
	MaxBytes        string `yaml:"max_bytes"`
	StorageAPI      *bool  `yaml:"storage_api"`
	Endpoint        string `yaml:"endpoint"`
}

// Options are for tests and embedding.
type Options struct {
	ClientOptions []option.ClientOption // e.g. option.WithEndpoint, option.WithHTTPClient
	Logger        *slog.Logger
}

// Source is the connector.
type Source struct {
	client   *bigquery.Client
	set      Settings
	maxBytes int64
	log      *slog.Logger
}

var _ connectors.Connector = (*Source)(nil)

// New builds the client; with the Storage Read API enabled it falls back to REST if that
// client cannot be set up (the API may be disabled in the project).
func New(ctx context.Context, s Settings, opt Options) (*Source, error) {
	var missing []string
	if s.Project == "" {
		missing = append(missing, "project")
	}
	if s.Dataset == "" {
		missing = append(missing, "dataset")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("data_source.bigquery: missing %s", strings.Join(missing, ", "))
	}
	maxBytes, err := parseBytes(s.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("data_source.bigquery: max_bytes: %w", err)
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	copts := append([]option.ClientOption{}, opt.ClientOptions...)
	if s.Endpoint != "" {
		copts = append(copts, option.WithEndpoint(s.Endpoint))
		if s.CredentialsFile == "" {
			copts = append(copts, option.WithoutAuthentication())
		}
	}
	if s.CredentialsFile != "" {
		if _, err := os.Stat(s.CredentialsFile); err != nil {
			return nil, fmt.Errorf("data_source.bigquery: credentials_file: %w", err)
		}
		copts = append(copts, option.WithAuthCredentialsFile(option.ServiceAccount, s.CredentialsFile))
	}
	client, err := bigquery.NewClient(ctx, s.Project, copts...)
	if err != nil {
		return nil, fmt.Errorf("bigquery: %w", err)
	}
	if s.Location != "" {
		client.Location = s.Location
	}
	src := &Source{client: client, set: s, maxBytes: maxBytes, log: opt.Logger.With("connector", "bigquery", "project", s.Project)}
	useStorage := (s.StorageAPI == nil || *s.StorageAPI) && s.Endpoint == "" && len(opt.ClientOptions) == 0
	if useStorage {
		if err := client.EnableStorageReadClient(ctx, copts...); err != nil {
			src.log.Warn("Storage Read API unavailable; reading over REST", "error", err)
		}
	}
	return src, nil
}

// Check reads the dataset's metadata, which proves project, dataset and credentials.
func (s *Source) Check(ctx context.Context) error {
	if _, err := s.client.Dataset(s.set.Dataset).Metadata(ctx); err != nil {
		return fmt.Errorf("bigquery: dataset %s.%s: %w", s.set.Project, s.set.Dataset, err)
	}
	return nil
}

// TableInfo describes a table for `analyst init`.
type TableInfo struct {
	ID          string // dataset.table
	Name        string
	Description string
	Rows        int64
	Bytes       int64
	Columns     []store.Column
	PartitionBy string // the time-partitioning column, if any
}

// Tables lists the default dataset's tables with their schemas and sizes.
func (s *Source) Tables(ctx context.Context) ([]TableInfo, error) {
	var out []TableInfo
	it := s.client.Dataset(s.set.Dataset).Tables(ctx)
	for {
		t, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("bigquery: list tables of %s: %w", s.set.Dataset, err)
		}
		md, err := t.Metadata(ctx)
		if err != nil {
			return nil, fmt.Errorf("bigquery: table %s: %w", t.TableID, err)
		}
		info := TableInfo{ID: s.set.Dataset + "." + t.TableID, Name: t.TableID, Description: md.Description,
			Rows: int64(md.NumRows), Bytes: md.NumBytes, Columns: columns(md.Schema)}
		if md.TimePartitioning != nil {
			info.PartitionBy = md.TimePartitioning.Field
		}
		out = append(out, info)
	}
}

// Extract streams the table, or the rows of its incremental window, into a CSV file.
func (s *Source) Extract(ctx context.Context, req connectors.ExtractRequest) (*connectors.Extraction, error) {
	ref, err := s.table(req.Table.ID)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(req.StagingDir, 0o755); err != nil {
		return nil, err
	}
	started := time.Now()
	var it *bigquery.RowIterator
	var schema bigquery.Schema
	col := req.Table.PartitionBy
	if col != "" && (!req.ChangedSince.IsZero() || !req.ChangedUntil.IsZero()) {
		it, err = s.query(ctx, ref, col, req.ChangedSince, req.ChangedUntil)
		if err != nil {
			return nil, fmt.Errorf("bigquery: table %s: %w", req.Table.ID, err)
		}
		schema = it.Schema
	} else {
		md, err := ref.Metadata(ctx)
		if err != nil {
			return nil, fmt.Errorf("bigquery: table %s: %w", req.Table.ID, err)
		}
		schema = md.Schema
		it = ref.Read(ctx)
	}
	path := filepath.Join(req.StagingDir, "bq-"+strings.ReplaceAll(req.Table.Name, "/", "_")+".csv")
	rows, bytes, err := writeCSV(path, schema, it, req.Progress)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("bigquery: table %s: %w", req.Table.ID, err)
	}
	s.log.Info("bigquery table read", "table", req.Table.ID, "rows", rows, "bytes", bytes, "took", time.Since(started).Round(time.Millisecond))
	return &connectors.Extraction{
		Files:     []string{path},
		Format:    store.CSVFormat{Delimiter: ',', Quote: '"', Header: true, Encoding: "utf-8"},
		Columns:   columns(schema),
		Temporary: true,
	}, nil
}

// query runs the window query after a dry run has shown it stays under max_bytes.
func (s *Source) query(ctx context.Context, ref *bigquery.Table, col string, since, until time.Time) (*bigquery.RowIterator, error) {
	sql := fmt.Sprintf("SELECT * FROM `%s.%s.%s` WHERE TRUE", ref.ProjectID, ref.DatasetID, ref.TableID)
	var params []bigquery.QueryParameter
	if !since.IsZero() {
		sql += fmt.Sprintf(" AND `%s` >= @since", col)
		params = append(params, bigquery.QueryParameter{Name: "since", Value: since.UTC()})
	}
	if !until.IsZero() {
		sql += fmt.Sprintf(" AND `%s` < @until", col)
		params = append(params, bigquery.QueryParameter{Name: "until", Value: until.UTC()})
	}
	newQuery := func() *bigquery.Query {
		q := s.client.Query(sql)
		q.Parameters = params
		if s.maxBytes > 0 {
			q.MaxBytesBilled = s.maxBytes // the server-side guard, should the estimate be wrong
		}
		return q
	}
	dry := newQuery()
	dry.DryRun = true
	job, err := dry.Run(ctx)
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	processed := job.LastStatus().Statistics.TotalBytesProcessed
	if s.maxBytes > 0 && processed > s.maxBytes {
		return nil, fmt.Errorf("the query would process %s, more than data_source.bigquery.max_bytes (%s)", formatBytes(processed), formatBytes(s.maxBytes))
	}
	s.log.Info("bigquery query", "table", ref.TableID, "estimated_bytes", processed)
	job, err = newQuery().Run(ctx)
	if err != nil {
		return nil, err
	}
	return job.Read(ctx)
}

// table resolves "table", "dataset.table" or "project.dataset.table".
func (s *Source) table(id string) (*bigquery.Table, error) {
	parts := strings.Split(id, ".")
	switch len(parts) {
	case 1:
		return s.client.Dataset(s.set.Dataset).Table(parts[0]), nil
	case 2:
		return s.client.Dataset(parts[0]).Table(parts[1]), nil
	case 3:
		return s.client.DatasetInProject(parts[0], parts[1]).Table(parts[2]), nil
	}
	return nil, fmt.Errorf("bigquery: table id %q is not [project.]dataset.table", id)
}

// columns maps BigQuery types to the converter's; nested and exotic types travel as JSON text.
func columns(schema bigquery.Schema) []store.Column {
	out := make([]store.Column, len(schema))
	for i, f := range schema {
		t := store.TypeString
		if !f.Repeated {
			switch f.Type {
			case bigquery.IntegerFieldType:
				t = store.TypeInteger
			case bigquery.FloatFieldType:
				t = store.TypeNumeric
			case bigquery.NumericFieldType:
				t = "DECIMAL(38,9)"
			case bigquery.BooleanFieldType:
				t = store.TypeBoolean
			case bigquery.DateFieldType:
				t = store.TypeDate
			case bigquery.DateTimeFieldType:
				t = store.TypeTimestamp
			case bigquery.TimestampFieldType:
				t = store.TypeTimestampTZ
			}
		}
		out[i] = store.Column{Name: f.Name, Type: t, Description: f.Description}
	}
	return out
}

// writeCSV streams the iterator's rows into path with a header line.
func writeCSV(path string, schema bigquery.Schema, it *bigquery.RowIterator, progress func(int64)) (rows, size int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	cw := &countWriter{w: f}
	w := csv.NewWriter(cw)
	header := make([]string, len(schema))
	for i, fs := range schema {
		header[i] = fs.Name
	}
	w.Write(header)
	rec := make([]string, len(schema))
	for {
		var row []bigquery.Value
		err = it.Next(&row)
		if errors.Is(err, iterator.Done) {
			err = nil
			break
		}
		if err != nil {
			break
		}
		for i := range rec {
			rec[i] = ""
			if i < len(row) {
				if rec[i], err = format(row[i]); err != nil {
					break
				}
			}
		}
		if err != nil {
			break
		}
		if err = w.Write(rec); err != nil {
			break
		}
		rows++
		if progress != nil && rows%10000 == 0 {
			w.Flush()
			progress(cw.n)
		}
	}
	w.Flush()
	if err == nil {
		err = w.Error()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return rows, cw.n, err
}

// format writes a value the way the converter parses its column type; null is empty.
func format(v bigquery.Value) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case *big.Rat:
		return x.FloatString(9), nil
	case civil.Date:
		return x.String(), nil
	case civil.DateTime:
		return x.Date.String() + " " + x.Time.String(), nil
	case civil.Time:
		return x.String(), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	default: // records and repeated fields
		b, err := json.Marshal(x)
		return string(b), err
	}
}

type countWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// parseBytes reads "50GB", "1.5TB", "500MB" or a plain number of bytes (powers of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return 0, nil
	}
	mult := float64(1)
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 50GB", s)
	}
	return int64(f * mult), nil
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.1f TB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}
