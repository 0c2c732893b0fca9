package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/store"
)

// sampleLines is how much of a CSV file the wizard reads to infer column types. The converter
// still infers exactly over all rows at each sync; the sample only documents and guides.
const sampleLines = 2000

// scanCSV proposes a table for each *.csv file in dir and each sub-folder holding CSV files
// (a folder of drops, read incrementally).
func scanCSV(ctx context.Context, dir string) ([]*proposal, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("CSV folder %s does not exist", dir)
	}
	if err != nil {
		return nil, err
	}
	var out []*proposal
	for _, e := range entries {
		var sample, rel string
		var size int64
		switch {
		case e.Type().IsRegular() && strings.EqualFold(filepath.Ext(e.Name()), ".csv"):
			rel, sample = e.Name(), filepath.Join(dir, e.Name())
			if fi, err := e.Info(); err == nil {
				size = fi.Size()
			}
		case e.IsDir():
			files, _ := filepath.Glob(filepath.Join(dir, e.Name(), "*.csv"))
			if len(files) == 0 {
				continue
			}
			sort.Strings(files)
			rel, sample = e.Name(), files[len(files)-1]
			for _, f := range files {
				if fi, err := os.Stat(f); err == nil {
					size += fi.Size()
				}
			}
		default:
			continue
		}
		stem := strings.TrimSuffix(rel, filepath.Ext(rel))
		p := &proposal{ID: stem, Name: safeName(stem), Folder: "csv", Rows: -1, Bytes: size, CSVPath: rel,
			Description: "From " + rel}
		cols, delim, err := inferCSV(ctx, sample)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sample, err)
		}
		p.Columns = cols
		if delim != ',' {
			p.Description += fmt.Sprintf(" (delimiter %q)", delim)
		}
		p.PrimaryKey, p.PKGuessed = guessPrimaryKey(p.Name, cols), true
		out = append(out, p)
	}
	return out, nil
}

// inferCSV converts the first sampleLines lines of file with the pipeline's converter and
// returns the columns with the types it inferred, and the delimiter it detected.
func inferCSV(ctx context.Context, file string) ([]store.Column, rune, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var sample bytes.Buffer
	r := bufio.NewReader(f)
	for i := 0; i < sampleLines; i++ {
		line, err := r.ReadString('\n')
		sample.WriteString(line)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
	}
	header, _, _ := strings.Cut(sample.String(), "\n")
	delim := ','
	for _, d := range []rune{';', '\t', '|'} {
		if strings.Count(header, string(d)) > strings.Count(header, string(delim)) {
			delim = d
		}
	}
	tmp, err := os.MkdirTemp("", "analyst-init-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(tmp)
	in := filepath.Join(tmp, "sample.csv")
	if err := os.WriteFile(in, sample.Bytes(), 0o600); err != nil {
		return nil, 0, err
	}
	rep, err := store.ConvertCSV(ctx, []string{in}, store.ConvertOptions{
		Format: store.CSVFormat{Delimiter: delim, Quote: '"', Header: true},
	}, filepath.Join(tmp, "sample.parquet"))
	if err != nil {
		return nil, 0, err
	}
	return rep.Columns, delim, nil
}

// suggestCSV: a single file is re-read whole when it changes; a folder of drops is read
// incrementally (only files new since the last sync).
func (p *proposal) suggestCSV() {
	if strings.EqualFold(filepath.Ext(p.CSVPath), ".csv") {
		p.Strategy, p.Note = config.FullRefresh, "a CSV file: re-read whole when it changes"
		return
	}
	p.Strategy, p.Note = config.Incremental, "a folder of drops: only new files are read"
}

// yamlSettings are connector settings given as YAML text (the wizard tests a connection
// before instance.yaml exists).
type yamlSettings struct {
	home string
	yaml string
}

func (s *yamlSettings) Decode(v any) error {
	dec := yaml.NewDecoder(strings.NewReader(s.yaml))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func (s *yamlSettings) Dir() string { return s.home }
