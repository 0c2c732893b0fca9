package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/connectors/keboola"
	"github.com/ai-data-analyst/analyst/demo"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "init", usage: "first-time setup: asks (or takes as flags) name, domain, source, credentials and tables; --demo writes the demo", run: runInit})
}

// initOptions are the wizard's answers; each is also a flag.
type initOptions struct {
	name, domain, source, publicURL, tables      string
	kbcURL, kbcToken, kbcProject                 string
	csvPath, bqProject, bqDataset, bqCredentials string
	bqMaxBytes, bqEndpoint                       string
	demo, nonInteractive, force                  bool
	largeRows                                    int64
}

// wizard asks questions on a terminal, or reads answers line by line from a pipe.
type wizard struct {
	opts  initOptions
	in    *bufio.Reader
	inFD  int // -1 unless stdin is a terminal (then secrets are read without echo)
	out   io.Writer
	home  string
	ask   bool // false with --non-interactive: every answer comes from a flag or its default
	files []pendingFile
}

type pendingFile struct {
	rel     string
	content string
	mode    os.FileMode
}

func runInit(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("init")
	var o initOptions
	fs.StringVar(&o.name, "name", "", "instance name, e.g. \"Acme Data\"")
	fs.StringVar(&o.domain, "domain", "", "company e-mail domain(s) allowed to sign in, comma-separated")
	fs.StringVar(&o.source, "source", "", "data source: keboola, csv or bigquery")
	fs.StringVar(&o.kbcURL, "keboola-url", "", "Keboola stack URL, e.g. https://connection.keboola.com")
	fs.StringVar(&o.kbcToken, "keboola-token", "", "Keboola Storage API token (written to .env only; env KEBOOLA_STORAGE_TOKEN)")
	fs.StringVar(&o.kbcProject, "keboola-project", "", "Keboola project id")
	fs.StringVar(&o.csvPath, "csv-path", "", "folder of the CSV files (relative to the instance folder or absolute)")
	fs.StringVar(&o.bqProject, "bq-project", "", "BigQuery project id")
	fs.StringVar(&o.bqDataset, "bq-dataset", "", "BigQuery dataset")
	fs.StringVar(&o.bqCredentials, "bq-credentials", "", "service-account JSON key file (empty: workload identity / application default credentials)")
	fs.StringVar(&o.bqMaxBytes, "bq-max-bytes", "", "refuse BigQuery queries that would scan more than this, e.g. 50GB")
	fs.StringVar(&o.bqEndpoint, "bq-endpoint", "", "BigQuery REST endpoint of an emulator (no credentials are sent)")
	fs.StringVar(&o.publicURL, "public-url", "", "URL analysts open, e.g. https://data.acme.com")
	fs.StringVar(&o.tables, "tables", "", `tables to sync: "all" or ids/numbers, comma-separated; "id:strategy" sets a strategy`)
	fs.Int64Var(&o.largeRows, "large-rows", defaultLargeRows, "tables with at least this many rows are synced incrementally")
	fs.BoolVar(&o.demo, "demo", false, "write the demo instance (config, catalogue, sample CSVs) to edit and extend")
	fs.BoolVar(&o.nonInteractive, "non-interactive", false, "ask nothing: take every answer from flags (fails where one is missing)")
	fs.BoolVar(&o.force, "force", false, "overwrite existing files without asking")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("init takes no arguments (got %q); answers are flags", fs.Args())
	}
	if o.kbcToken == "" {
		o.kbcToken = os.Getenv("KEBOOLA_STORAGE_TOKEN")
	}
	w := &wizard{opts: o, in: bufio.NewReader(os.Stdin), inFD: -1, out: os.Stdout, home: g.home, ask: !o.nonInteractive}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		w.inFD = fd
	}
	return w.run(ctx)
}

func (w *wizard) run(ctx context.Context) error {
	if w.opts.demo {
		return w.writeDemo()
	}
	for _, rel := range []string{".env", "config/instance.yaml", "docs/data_description.md"} {
		if err := w.mayWrite(rel); err != nil {
			return err
		}
	}
	w.say("Setting up an AI Data Analyst instance in %s\n\n", absPath(w.home))
	var err error
	o := &w.opts
	if o.domain, err = w.question("Company e-mail domain(s) allowed to sign in (comma-separated)", o.domain, ""); err != nil {
		return err
	}
	defName := "Data Analyst"
	if d := firstDomain(o.domain); d != "" {
		defName = strings.ToUpper(d[:1]) + strings.SplitN(d, ".", 2)[0][1:] + " Data Analyst"
	}
	if o.name, err = w.question("Instance name", o.name, defName); err != nil {
		return err
	}
	if o.source, err = w.choice("Data source", o.source, []string{"keboola", "csv", "bigquery"}, "keboola"); err != nil {
		return err
	}
	if o.publicURL, err = w.question("Public URL analysts will open", o.publicURL, "http://localhost:8080"); err != nil {
		return err
	}

	env := map[string]string{"WEBAPP_SECRET_KEY": randomHex(32)}
	var block string
	var proposals []*proposal
	var mapping map[string]string
	switch o.source {
	case "keboola":
		block, proposals, mapping, err = w.keboola(ctx, env)
	case "csv":
		block, proposals, err = w.csv(ctx)
	case "bigquery":
		block, proposals, err = w.bigquery(ctx)
	}
	if err != nil {
		return err
	}
	if err := w.pickStrategies(proposals); err != nil {
		return err
	}

	w.stage(".env", envFile(env), 0o600)
	w.stage("docs/data_description.md", catalogueMarkdown(o.name, o.source, proposals, mapping), 0o644)
	w.stage("config/instance.yaml", instanceYAML(*o, block), 0o644)
	if err := w.commit(); err != nil {
		return err
	}
	cfg, err := config.Load(w.home)
	if err != nil {
		return fmt.Errorf("the written configuration does not load (please report this): %w", err)
	}
	w.say("\nWrote config/instance.yaml, .env (secrets, mode 0600) and docs/data_description.md (%d tables).\n", len(cfg.Catalogue.Tables))
	w.say("Next:\n  analyst doctor      check everything\n  analyst sync        first sync\n  analyst serve       start the portal (%s)\n", o.publicURL)
	return nil
}

func (w *wizard) writeDemo() error {
	err := demo.Write(w.home, demo.Options{Force: w.opts.force})
	if errors.Is(err, fs.ErrExist) {
		if !w.ask {
			return fmt.Errorf("%w (use --force to overwrite)", err)
		}
		ok, aerr := w.confirm(fmt.Sprintf("%v\nOverwrite the demo files?", errors.Unwrap(err)), false)
		if aerr != nil {
			return aerr
		}
		if !ok {
			return errors.New("nothing written")
		}
		err = demo.Write(w.home, demo.Options{Force: true})
	}
	if err != nil {
		return err
	}
	w.say("Demo instance written to %s. Try:\n  analyst sync\n  analyst serve\n", absPath(w.home))
	return nil
}

// mayWrite checks that rel can be written: absent, or the admin agrees (or --force).
func (w *wizard) mayWrite(rel string) error {
	if _, err := os.Lstat(filepath.Join(w.home, rel)); errors.Is(err, fs.ErrNotExist) || w.opts.force {
		return nil
	}
	if !w.ask {
		return fmt.Errorf("%s already exists; not overwriting it (use --force)", rel)
	}
	ok, err := w.confirm(rel+" already exists. Overwrite it?", false)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s kept; nothing written", rel)
	}
	return nil
}

// keboola asks for and tests the credentials, then lists the project's tables.
func (w *wizard) keboola(ctx context.Context, env map[string]string) (string, []*proposal, map[string]string, error) {
	o := &w.opts
	var client *keboola.Client
	for attempt := 0; ; attempt++ {
		var err error
		if o.kbcURL, err = w.question("Keboola stack URL", o.kbcURL, "https://connection.keboola.com"); err != nil {
			return "", nil, nil, err
		}
		if o.kbcProject, err = w.question("Keboola project id", o.kbcProject, ""); err != nil {
			return "", nil, nil, err
		}
		if o.kbcToken, err = w.secret("Keboola Storage API token", o.kbcToken); err != nil {
			return "", nil, nil, err
		}
		client, err = keboola.New(keboola.Settings{StackURL: o.kbcURL, StorageToken: o.kbcToken, ProjectID: o.kbcProject},
			keboola.Options{MaxRetries: 2, RetryBase: 200 * time.Millisecond})
		if err == nil {
			w.say("Testing the connection... ")
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = client.Check(cctx)
			cancel()
		}
		if err == nil {
			w.say("ok\n")
			break
		}
		w.say("\n")
		if !w.ask || attempt == 2 {
			return "", nil, nil, fmt.Errorf("keboola: %w", err)
		}
		w.say("That did not work: %v\nPlease check and enter them again.\n", err)
		o.kbcURL, o.kbcProject, o.kbcToken = "", "", ""
	}
	env["KEBOOLA_STORAGE_TOKEN"] = o.kbcToken

	buckets, err := client.ListBuckets(ctx)
	if err != nil {
		return "", nil, nil, err
	}
	var all []*proposal
	mapping := map[string]string{}
	for _, b := range buckets {
		tables, err := client.ListTables(ctx, b.ID)
		if err != nil {
			return "", nil, nil, err
		}
		for _, t := range tables {
			folder := folderFor(b.ID)
			mapping[b.ID] = folder
			p := &proposal{ID: t.ID, Name: safeName(t.Name), Folder: folder, Description: t.Description,
				Rows: t.RowsCount, Bytes: t.DataSizeBytes, Columns: t.Columns, PrimaryKey: t.PrimaryKey}
			if len(p.PrimaryKey) == 0 {
				p.PrimaryKey, p.PKGuessed = guessPrimaryKey(p.Name, p.Columns), true
			}
			all = append(all, p)
		}
	}
	picked, err := w.pickTables(all)
	if err != nil {
		return "", nil, nil, err
	}
	for b := range mapping {
		if !slices.ContainsFunc(picked, func(p *proposal) bool { return strings.HasPrefix(p.ID, b+".") }) {
			delete(mapping, b)
		}
	}
	for _, p := range picked {
		p.Folder = mapping[p.ID[:strings.LastIndex(p.ID, ".")]]
	}
	uniqueNames(picked)
	block := fmt.Sprintf("  keboola:\n    stack_url: %s\n    storage_token: ${KEBOOLA_STORAGE_TOKEN}\n    project_id: %s\n",
		yamlScalar(o.kbcURL), strconv.Quote(o.kbcProject))
	return block, picked, mapping, nil
}

// csv scans the folder for CSV files (and folders of them) and infers their column types.
func (w *wizard) csv(ctx context.Context) (string, []*proposal, error) {
	o := &w.opts
	var err error
	if o.csvPath, err = w.question("Folder of the CSV files", o.csvPath, "data/source"); err != nil {
		return "", nil, err
	}
	dir := o.csvPath
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(w.home, dir)
	}
	found, err := scanCSV(ctx, dir)
	if err != nil {
		return "", nil, err
	}
	if len(found) == 0 {
		w.say("No CSV files in %s yet; the catalogue starts empty.\n", dir)
	}
	picked, err := w.pickTables(found)
	if err != nil {
		return "", nil, err
	}
	uniqueNames(picked)
	return fmt.Sprintf("  csv:\n    path: %s\n    watch: true\n", yamlScalar(o.csvPath)), picked, nil
}

// bigquery asks for the project and dataset, tests them through the connector, and takes the
// tables from --tables or the dataset's listing.
func (w *wizard) bigquery(ctx context.Context) (string, []*proposal, error) {
	o := &w.opts
	var err error
	if o.bqProject, err = w.question("BigQuery project id", o.bqProject, ""); err != nil {
		return "", nil, err
	}
	if o.bqDataset, err = w.question("BigQuery dataset", o.bqDataset, ""); err != nil {
		return "", nil, err
	}
	if o.bqCredentials, err = w.question("Service-account JSON key file (empty: workload identity)", o.bqCredentials, "-"); err != nil {
		return "", nil, err
	}
	if o.bqCredentials == "-" {
		o.bqCredentials = ""
	}
	block := fmt.Sprintf("  bigquery:\n    project: %s\n    dataset: %s\n", yamlScalar(o.bqProject), yamlScalar(o.bqDataset))
	if o.bqCredentials != "" {
		block += fmt.Sprintf("    credentials_file: %s\n", yamlScalar(o.bqCredentials))
	}
	if o.bqMaxBytes != "" {
		block += fmt.Sprintf("    max_bytes: %s\n", yamlScalar(o.bqMaxBytes))
	}
	if o.bqEndpoint != "" {
		block += fmt.Sprintf("    endpoint: %s\n", yamlScalar(o.bqEndpoint))
	}
	// The same keys, without the indentation of the data_source block.
	settings := &yamlSettings{home: w.home, yaml: strings.ReplaceAll(strings.TrimPrefix(block, "  bigquery:\n"), "\n    ", "\n")}
	settings.yaml = strings.TrimPrefix(settings.yaml, "    ")
	var all []*proposal
	c, err := connectors.Open("bigquery", settings)
	if err == nil {
		w.say("Testing the connection... ")
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = c.Check(cctx)
		cancel()
		if err == nil {
			w.say("ok\n")
			all, err = bigqueryProposals(ctx, c)
		}
	}
	if err != nil {
		w.say("\n")
		return "", nil, fmt.Errorf("bigquery: %w", err)
	}
	if len(all) == 0 && o.tables != "" && o.tables != "all" {
		for _, id := range strings.Split(o.tables, ",") {
			id, _, _ = strings.Cut(strings.TrimSpace(id), ":")
			name := id[strings.LastIndex(id, ".")+1:]
			all = append(all, &proposal{ID: o.bqDataset + "." + name, Name: safeName(name), Folder: safeName(o.bqDataset),
				Rows: -1, Bytes: -1, PrimaryKey: []string{"id"}, PKGuessed: true})
		}
	}
	picked, err := w.pickTables(all)
	if err != nil {
		return "", nil, err
	}
	uniqueNames(picked)
	return block, picked, nil
}

// pickTables shows the tables and lets the admin choose ("all", numbers or ids; "id:strategy").
func (w *wizard) pickTables(all []*proposal) ([]*proposal, error) {
	if len(all) == 0 {
		return nil, nil
	}
	w.say("\nTables found:\n")
	for i, p := range all {
		cols := ""
		if len(p.Columns) > 0 {
			cols = fmt.Sprintf("%d columns", len(p.Columns))
		}
		w.say("  %3d) %-40s %14s rows %10s  %s\n", i+1, p.ID, humanCount(p.Rows), humanBytes(p.Bytes), cols)
	}
	answer, err := w.question("Tables to sync (all, or numbers/ids separated by commas)", w.opts.tables, "all")
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(strings.TrimSpace(answer), "all") {
		for _, p := range all {
			p.suggest(w.opts.largeRows)
		}
		return all, nil
	}
	var picked []*proposal
	for _, item := range strings.Split(answer, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		strategy := ""
		if i := strings.LastIndex(item, ":"); i > 0 {
			item, strategy = item[:i], item[i+1:]
		}
		var p *proposal
		if n, err := strconv.Atoi(item); err == nil && n >= 1 && n <= len(all) {
			p = all[n-1]
		} else if i := slices.IndexFunc(all, func(p *proposal) bool { return p.ID == item || p.Name == item }); i >= 0 {
			p = all[i]
		} else {
			return nil, fmt.Errorf("--tables: %q is not one of the tables found", item)
		}
		p.suggest(w.opts.largeRows)
		if strategy != "" {
			if err := p.setStrategy(strategy); err != nil {
				return nil, fmt.Errorf("--tables: %s: %w", item, err)
			}
		}
		if !slices.Contains(picked, p) {
			picked = append(picked, p)
		}
	}
	return picked, nil
}

// pickStrategies shows the suggested strategies and lets the admin change them.
func (w *wizard) pickStrategies(ps []*proposal) error {
	if len(ps) == 0 {
		return nil
	}
	w.say("\nSuggested sync strategies:\n")
	for i, p := range ps {
		w.say("  %3d) %-28s %-13s %s\n", i+1, p.Name, p.Strategy, p.Note)
	}
	if !w.ask {
		return nil
	}
	ok, err := w.confirm("Keep these strategies?", true)
	if err != nil || ok {
		return err
	}
	for _, p := range ps {
		for {
			s, err := w.question(fmt.Sprintf("Strategy for %s (full_refresh, incremental, partitioned)", p.Name), "", p.Strategy)
			if err != nil {
				return err
			}
			if err := p.setStrategy(s); err != nil {
				w.say("  %v\n", err)
				continue
			}
			break
		}
	}
	return nil
}

func (p *proposal) setStrategy(s string) error {
	switch s {
	case config.FullRefresh:
		p.Strategy, p.PartitionBy, p.Note = s, "", "chosen at setup"
	case config.Incremental:
		p.Strategy, p.Note = s, "chosen at setup"
	case config.Partitioned:
		if p.PartitionBy == "" {
			p.PartitionBy = partitionColumn(p.Columns)
		}
		if p.PartitionBy == "" {
			return errors.New("partitioned needs a DATE or TIMESTAMP column; the table has none")
		}
		p.Strategy, p.Note = s, "chosen at setup; monthly partitions by "+p.PartitionBy
	default:
		return fmt.Errorf("%q is not one of full_refresh, incremental, partitioned", s)
	}
	return nil
}

// question asks for a value; flag values and --non-interactive skip the prompt. def "" means
// the answer is required.
func (w *wizard) question(prompt, value, def string) (string, error) {
	if value != "" {
		return value, nil
	}
	if !w.ask {
		if def != "" {
			return def, nil
		}
		return "", fmt.Errorf("--non-interactive: %s is required (see analyst init -h)", strings.ToLower(prompt))
	}
	for {
		if def != "" {
			w.say("%s [%s]: ", prompt, def)
		} else {
			w.say("%s: ", prompt)
		}
		line, err := w.readLine()
		if err != nil {
			return "", err
		}
		if line == "" {
			line = def
		}
		if line != "" {
			return line, nil
		}
	}
}

// secret asks for a credential without echoing it on a terminal.
func (w *wizard) secret(prompt, value string) (string, error) {
	if value != "" || !w.ask || w.inFD < 0 {
		return w.question(prompt, value, "")
	}
	for {
		w.say("%s (not shown): ", prompt)
		b, err := term.ReadPassword(w.inFD)
		w.say("\n")
		if err != nil {
			return "", err
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	}
}

func (w *wizard) choice(prompt, value string, options []string, def string) (string, error) {
	for {
		v, err := w.question(prompt+" ("+strings.Join(options, ", ")+")", value, def)
		if err != nil {
			return "", err
		}
		v = strings.ToLower(strings.TrimSpace(v))
		if slices.Contains(options, v) {
			return v, nil
		}
		if !w.ask || value != "" {
			return "", fmt.Errorf("%s: %q is not one of %s", strings.ToLower(prompt), v, strings.Join(options, ", "))
		}
		w.say("  please answer one of %s\n", strings.Join(options, ", "))
	}
}

func (w *wizard) confirm(prompt string, def bool) (bool, error) {
	hint := "y/N"
	if def {
		hint = "Y/n"
	}
	for {
		w.say("%s [%s]: ", prompt, hint)
		line, err := w.readLine()
		if err != nil {
			return false, err
		}
		switch strings.ToLower(line) {
		case "":
			return def, nil
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
	}
}

func (w *wizard) readLine() (string, error) {
	line, err := w.in.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		if errors.Is(err, io.EOF) {
			return "", errors.New("input ended before the setup was complete (use flags with --non-interactive)")
		}
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func (w *wizard) say(format string, args ...any) { fmt.Fprintf(w.out, format, args...) }

func (w *wizard) stage(rel, content string, mode os.FileMode) {
	w.files = append(w.files, pendingFile{rel: rel, content: content, mode: mode})
}

// commit writes the staged files atomically, in order (config/instance.yaml last: its
// appearance is what makes the folder an instance).
func (w *wizard) commit() error {
	for _, f := range w.files {
		err := store.WriteFileAtomic(filepath.Join(w.home, f.rel), f.mode, func(out io.Writer) error {
			_, err := io.WriteString(out, f.content)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func instanceYAML(o initOptions, sourceBlock string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `analyst init`; see docs/configuration.md for every key.\n")
	fmt.Fprintf(&b, "# Secrets are ${VAR} references to .env (mode 0600, never committed).\n")
	fmt.Fprintf(&b, "instance:\n  name: %s\n", yamlScalar(o.name))
	if o.publicURL != "" {
		fmt.Fprintf(&b, "  public_url: %s\n", yamlScalar(o.publicURL))
	}
	domains := splitList(o.domain)
	b.WriteString("\nauth:\n")
	if len(domains) > 0 {
		fmt.Fprintf(&b, "  allowed_domain: %s\n", yamlScalar(domains[0]))
	}
	if len(domains) > 1 {
		quoted := make([]string, len(domains)-1)
		for i, d := range domains[1:] {
			quoted[i] = yamlScalar(d)
		}
		fmt.Fprintf(&b, "  allowed_domains: [%s]\n", strings.Join(quoted, ", "))
	}
	b.WriteString("  webapp_secret_key: ${WEBAPP_SECRET_KEY}\n")
	fmt.Fprintf(&b, "\ndata_source:\n  type: %s\n%s", o.source, sourceBlock)
	b.WriteString("\npipeline:\n  backend: bolt\n")
	return b.String()
}

// envFile renders .env; values are single-quoted (taken literally) unless they hold a quote.
func envFile(env map[string]string) string {
	var b strings.Builder
	b.WriteString("# Secrets of this instance, referenced from config/instance.yaml as ${NAME}.\n# Never commit this file.\n")
	for _, k := range sortedKeys(env) {
		v := env[k]
		if strings.Contains(v, "'") {
			v = strconv.Quote(v)
		} else {
			v = "'" + v + "'"
		}
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return b.String()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func firstDomain(s string) string {
	if l := splitList(s); len(l) > 0 {
		return l[0]
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
