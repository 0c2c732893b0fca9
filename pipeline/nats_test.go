package pipeline_test

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/pipeline/natsembed"
)

// A stream created by an older binary (fewer topic roots) is widened at start.
func TestNATSStreamGainsNewTopicRoots(t *testing.T) {
	srv := startNATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := nc.JetStream()
	if _, err := js.AddStream(&nats.StreamConfig{Name: "ANALYST", Subjects: []string{"sync.>", "table.>"}, Storage: nats.FileStorage}); err != nil {
		t.Fatal(err)
	}
	b, err := pipeline.NewNATSBackend(srv.ClientURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	info, err := js.StreamInfo("ANALYST")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range info.Config.Subjects {
		found = found || s == "memory.>"
	}
	if !found {
		t.Fatalf("stream subjects %v lack memory.>", info.Config.Subjects)
	}
}

// startNATS runs a JetStream server on 127.0.0.1 for the test.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	srv, err := natsembed.Start(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}
