package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ai-data-analyst/analyst/connectors/keboola/keboolatest"
	"github.com/ai-data-analyst/analyst/internal/testenv"
)

func TestDoctorTestsTheKeboolaConnection(t *testing.T) {
	kbc := keboolatest.New(t, keboolatest.Config{})
	home := t.TempDir()
	instance := func(token string) {
		testenv.WriteFile(t, filepath.Join(home, "config/instance.yaml"), fmt.Sprintf(
			"instance: {name: Doctor}\ndata_source:\n  type: keboola\n  keboola: {stack_url: %q, storage_token: %q, project_id: \"7\"}\n", kbc.URL, token))
	}
	testenv.WriteFile(t, filepath.Join(home, "docs/data_description.md"), "```yaml\ntables: []\n```\n")

	instance(kbc.Token)
	out, stderr, code := analyst(t, home, "doctor")
	if code != 0 || !strings.Contains(out, "ok    source keboola") {
		t.Fatalf("good token: exit %d\n%s%s", code, out, stderr)
	}
	if kbc.Count("api", "GET", "/v2/storage/buckets") != 1 {
		t.Fatal("doctor must call GET /v2/storage/buckets")
	}

	instance("wrong-token-0000")
	out, _, code = analyst(t, home, "doctor")
	if code != 1 || !strings.Contains(out, "FAIL  source keboola") {
		t.Fatalf("bad token: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "wrong-token-0000") {
		t.Fatal("the token must not be printed")
	}
}
