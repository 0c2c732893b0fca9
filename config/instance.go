package config

import (
	"github.com/ai-data-analyst/analyst/schedule"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Instance is config/instance.yaml. Every block is optional except instance.name.
type Instance struct {
	Instance   Site               `yaml:"instance"`
	Server     Server             `yaml:"server"`
	Auth       Auth               `yaml:"auth"`
	DataSource DataSource         `yaml:"data_source"`
	Jira       Jira               `yaml:"jira"`
	Pipeline   Pipeline           `yaml:"pipeline"`
	Access     Access             `yaml:"access"`
	Datasets   map[string]Dataset `yaml:"datasets"`
	Catalog    Catalog            `yaml:"catalog"`
	Telegram   Telegram           `yaml:"telegram"`
	Desktop    Desktop            `yaml:"desktop"`
	Email      Email              `yaml:"email"`
	AI         AI                 `yaml:"ai"`
}

// Site is the instance block: name and branding.
type Site struct {
	Name         string `yaml:"name"`
	Subtitle     string `yaml:"subtitle"`
	Copyright    string `yaml:"copyright"`
	PublicURL    string `yaml:"public_url"`
	Logo         string `yaml:"logo"`
	PrimaryColor string `yaml:"primary_color"`
}

// Server names the machine analysts reach.
type Server struct {
	Hostname string `yaml:"hostname"`
	Host     string `yaml:"host"`
}

// Auth configures sign-in.
type Auth struct {
	AllowedDomain      string   `yaml:"allowed_domain"`
	AllowedDomains     []string `yaml:"allowed_domains"`
	GoogleClientID     string   `yaml:"google_client_id"`
	GoogleClientSecret string   `yaml:"google_client_secret"`
	WebappSecretKey    string   `yaml:"webapp_secret_key"`
}

// Domains returns allowed_domain and allowed_domains together, lower-cased, without duplicates.
func (a Auth) Domains() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range append([]string{a.AllowedDomain}, a.AllowedDomains...) {
		d = strings.ToLower(strings.TrimSpace(d))
		if d != "" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// DataSource is the data_source block: the default connector and one block per connector.
// The blocks are kept as YAML and decoded by their connector (Config.ConnectorSettings).
type DataSource struct {
	Type string
	// Schedules are per-source defaults (data_source.<name>.schedule) for tables without one.
	Schedules map[string]string
	blocks    map[string]*yaml.Node
}

// Jira configures the Jira webhook intake and API access.
type Jira struct {
	Domain        string            `yaml:"domain"`
	BaseURL       string            `yaml:"base_url"`     // default https://{domain}
	SLABaseURL    string            `yaml:"sla_base_url"` // default https://api.atlassian.com
	CloudID       string            `yaml:"cloud_id"`
	Email         string            `yaml:"email"`
	APIToken      string            `yaml:"api_token"`
	WebhookSecret string            `yaml:"webhook_secret"`
	SLAEmail      string            `yaml:"sla_email"`
	SLAAPIToken   string            `yaml:"sla_api_token"`
	AllowUnsigned bool              `yaml:"allow_unsigned"`
	CustomFields  map[string]string `yaml:"custom_fields"` // column name -> customfield_NNNNN
}

// Pipeline backends.
const (
	BackendBolt = "bolt"
	BackendNATS = "nats"
)

// Pipeline chooses the message backend.
type Pipeline struct {
	Backend string `yaml:"backend"` // bolt (default) or nats
	NATSURL string `yaml:"nats_url"`
	// Concurrency is how many messages each stage handles at once (default 4): in the process
	// on bolt; on nats in each process and, being JetStream's MaxAckPending, across them all.
	Concurrency int `yaml:"concurrency"`
}

// DefaultConcurrency is pipeline.concurrency when unset.
const DefaultConcurrency = 4

// Access lists the folders whose tables are private.
type Access struct {
	PrivateFolders []string `yaml:"private_folders"`
}

// Dataset is an optional group of tables an analyst can opt into.
type Dataset struct {
	Label       string   `yaml:"label"`
	Description string   `yaml:"description"`
	SizeHint    string   `yaml:"size_hint"`
	Requires    []string `yaml:"requires"`
}

// Catalog groups the portal's catalogue by Parquet folder.
type Catalog struct {
	Categories map[string]Category `yaml:"categories"`
	Order      []string            `yaml:"order"` // default: the categories in file order
}

// Category is how one folder is shown in the catalogue.
type Category struct {
	Label string `yaml:"label"`
	Icon  string `yaml:"icon"`
}

// Telegram configures the notification bot.
type Telegram struct {
	BotToken    string `yaml:"bot_token"`
	BotUsername string `yaml:"bot_username"`
	BaseURL     string `yaml:"base_url"`
}

// Desktop configures the desktop app's sign-in.
type Desktop struct {
	JWTSecret string `yaml:"jwt_secret"`
	JWTIssuer string `yaml:"jwt_issuer"`
	URLScheme string `yaml:"url_scheme"`
}

// Email configures outgoing mail.
type Email struct {
	SMTPURL     string `yaml:"smtp_url"`
	FromAddress string `yaml:"from_address"`
	FromName    string `yaml:"from_name"`
}

// AI configures the model provider.
type AI struct {
	Provider string `yaml:"provider"`
	BaseURL  string `yaml:"base_url"`
	Model    string `yaml:"model"`
	APIKey   string `yaml:"api_key"`
}

// DefaultSource is the connector tables use when data_source names none (the original's default).
const DefaultSource = "keboola"

// decodeInstance decodes the (already interpolated) root of instance.yaml block by block, so one
// bad block does not hide the errors of the others.
func decodeInstance(file string, root *yaml.Node) (Instance, problems) {
	var inst Instance
	var probs problems
	if root == nil {
		probs.add(file, 0, "instance.name", "required (the file is empty)")
		return inst, probs
	}
	if root.Kind != yaml.MappingNode {
		probs.add(file, root.Line, "", "the top level must be a mapping of blocks (instance:, server:, ...)")
		return inst, probs
	}
	blocks := map[string]any{
		"instance": &inst.Instance, "server": &inst.Server, "auth": &inst.Auth, "jira": &inst.Jira,
		"pipeline": &inst.Pipeline, "access": &inst.Access, "datasets": &inst.Datasets,
		"catalog": &inst.Catalog, "telegram": &inst.Telegram, "desktop": &inst.Desktop,
		"email": &inst.Email, "ai": &inst.AI,
	}
	known := []string{"data_source"}
	for k := range blocks {
		known = append(known, k)
	}
	seen := map[string]int{}
	nameChecked := true // a broken instance block already has its own error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if first, dup := seen[k.Value]; dup {
			probs.add(file, k.Line, k.Value, "block defined twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if k.Value == "data_source" {
			inst.DataSource, probs = decodeDataSource(file, v, probs)
			continue
		}
		target, ok := blocks[k.Value]
		if !ok {
			probs.add(file, k.Line, k.Value, "%s", unknownKey(k.Value, known))
			continue
		}
		bp := decodeStrict(file, v, target, k.Value)
		if k.Value == "instance" && len(bp) > 0 {
			nameChecked = false
		}
		probs = append(probs, bp...)
	}
	probs = append(probs, inst.finish(file, root, nameChecked)...)
	return inst, probs
}

func decodeDataSource(file string, n *yaml.Node, probs problems) (DataSource, problems) {
	ds := DataSource{blocks: map[string]*yaml.Node{}, Schedules: map[string]string{}}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return ds, probs
	}
	if n.Kind != yaml.MappingNode {
		probs.add(file, n.Line, "data_source", "must be a mapping (type: and one block per connector)")
		return ds, probs
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := "data_source." + k.Value
		switch {
		case k.Value == "type":
			if v.Kind != yaml.ScalarNode {
				probs.add(file, v.Line, key, "must be a connector name such as keboola, csv or bigquery")
				continue
			}
			ds.Type = strings.TrimSpace(v.Value)
		case ds.blocks[k.Value] != nil:
			probs.add(file, k.Line, key, "block defined twice (first at line %d)", ds.blocks[k.Value].Line)
		case v.Kind == yaml.MappingNode || (v.Kind == yaml.ScalarNode && v.Tag == "!!null"):
			ds.blocks[k.Value] = v
			probs = takeSchedule(file, k.Value, v, ds.Schedules, probs)
		default:
			probs.add(file, v.Line, key, "must be a mapping of the %s connector's settings", k.Value)
		}
	}
	return ds, probs
}

// takeSchedule moves a connector block's `schedule` key (a default for the source's tables) out
// of the block, so the connector's strict decoding never sees it.
func takeSchedule(file, source string, block *yaml.Node, schedules map[string]string, probs problems) problems {
	for i := 0; i+1 < len(block.Content); i += 2 {
		if block.Content[i].Value != "schedule" {
			continue
		}
		v := block.Content[i+1]
		if _, err := schedule.Parse(v.Value); err != nil {
			probs.add(file, v.Line, "data_source."+source+".schedule", "%v", err)
		} else {
			schedules[source] = strings.TrimSpace(v.Value)
		}
		block.Content = append(block.Content[:i:i], block.Content[i+2:]...)
		return probs
	}
	return probs
}

// finish applies defaults and checks what the blocks' types cannot express.
func (inst *Instance) finish(file string, root *yaml.Node, checkName bool) problems {
	var probs problems
	line := func(keys ...string) int { return findLine(root, keys...) }
	if checkName && strings.TrimSpace(inst.Instance.Name) == "" {
		probs.add(file, line("instance", "name"), "instance.name", "required")
	}

	ds := &inst.DataSource
	if ds.Type == "" {
		switch names := ds.Names(); len(names) {
		case 0:
			ds.Type = DefaultSource
		case 1:
			ds.Type = names[0]
		default:
			probs.add(file, line("data_source"), "data_source.type",
				"required when several connectors are configured (one of %s)", strings.Join(names, ", "))
		}
	}

	switch inst.Pipeline.Backend {
	case "":
		inst.Pipeline.Backend = BackendBolt
	case BackendBolt, BackendNATS:
	default:
		probs.add(file, line("pipeline", "backend"), "pipeline.backend", "%s", notOneOf(inst.Pipeline.Backend, []string{BackendBolt, BackendNATS}))
	}

	switch c := inst.Pipeline.Concurrency; {
	case c == 0:
		inst.Pipeline.Concurrency = DefaultConcurrency
	case c < 1 || c > 256:
		probs.add(file, line("pipeline", "concurrency"), "pipeline.concurrency", "must be between 1 and 256, not %d", c)
	}

	if inst.Jira.Domain != "" && inst.Jira.BaseURL == "" {
		inst.Jira.BaseURL = "https://" + inst.Jira.Domain
	}
	if inst.Jira.SLABaseURL == "" {
		inst.Jira.SLABaseURL = "https://api.atlassian.com"
	}
	inst.Jira.BaseURL = strings.TrimRight(inst.Jira.BaseURL, "/")
	inst.Jira.SLABaseURL = strings.TrimRight(inst.Jira.SLABaseURL, "/")

	datasetNames := sortedKeys(inst.Datasets)
	for _, name := range datasetNames {
		for _, req := range inst.Datasets[name].Requires {
			if _, ok := inst.Datasets[req]; !ok {
				probs.add(file, line("datasets", name, "requires"), "datasets."+name+".requires", "%s", notOneOf(req, datasetNames))
			}
		}
	}

	if len(inst.Catalog.Order) == 0 {
		inst.Catalog.Order = keysOf(find(root, "catalog", "categories"))
	}

	return probs
}

// find returns the node at the key path under n (mapping keys, or indexes into sequences), or nil.
func find(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n != nil && n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n == nil {
			return nil
		}
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		n = next
	}
	return n
}

// findLine returns the line of the deepest existing key along the path (of the item, for a
// sequence index), so a missing key is reported at its parent's key and a bad value at its own.
func findLine(n *yaml.Node, keys ...string) int {
	line := n.Line
	for _, k := range keys {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next, line = n.Content[i+1], n.Content[i].Line
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// keysOf returns the keys of a mapping node in file order.
func keysOf(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Names lists the connectors that have a block under data_source, sorted.
func (d DataSource) Names() []string {
	names := make([]string, 0, len(d.blocks))
	for n := range d.blocks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
