package config

import (
	"os"
	"strings"
	"testing"
)

// TestDocumentedExampleLoads keeps docs/configuration.md honest: its instance.yaml example and
// its catalogue example must load without errors.
func TestDocumentedExampleLoads(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var instance string
	blocks, _ := yamlBlocks(string(doc))
	for _, b := range blocks {
		if strings.HasPrefix(b.text, "instance:") {
			instance = b.text
		}
	}
	_, catalogue, ok := strings.Cut(string(doc), "````markdown\n")
	catalogue, _, _ = strings.Cut(catalogue, "````\n")
	if instance == "" || !ok {
		t.Fatal("examples not found in docs/configuration.md")
	}
	env := map[string]string{}
	for _, v := range []string{"GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "WEBAPP_SECRET_KEY", "KEBOOLA_STORAGE_TOKEN",
		"JIRA_API_TOKEN", "JIRA_WEBHOOK_SECRET", "TELEGRAM_BOT_TOKEN", "DESKTOP_JWT_SECRET", "SMTP_PASSWORD", "ANTHROPIC_API_KEY"} {
		env[v] = "x"
	}
	c := mustLoad(t, writeHome(t, map[string]string{"config/instance.yaml": instance, "docs/data_description.md": catalogue}), env)
	tb, ok := c.Catalogue.Table("order_lines")
	if !ok || tb.Folder != "shop" || tb.Schedule != "every 6h" || tb.WhereFilters[0].Values[0] != "2023-03-11" {
		t.Errorf("order_lines = %+v", tb)
	}
	if c.Instance.Email.SMTPURL != "smtps://mailer:x@smtp.acme.com:465" || !c.IsPrivate(Table{Folder: "hr"}) {
		t.Errorf("instance = %+v", c.Instance)
	}
}
