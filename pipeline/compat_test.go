package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
)

// Events stay in the log across upgrades (30 days by default), so a new binary must decode what
// older ones wrote. These payloads are frozen copies of what earlier versions published: never
// edit them; when an event changes shape, bump its version and add the old payload here.
var frozenEvents = []struct {
	name    string
	payload string
	into    func() any
	check   func(t *testing.T, e any)
}{
	{
		name:    "sync.requested before versioning (no version field)",
		payload: `{"run_id":"01J0","table":"orders","time":"2024-05-01T10:00:00Z","trigger":"schedule"}`,
		into:    func() any { return &pipeline.SyncRequested{} },
		check: func(t *testing.T, e any) {
			ev := e.(*pipeline.SyncRequested)
			if ev.RunID != "01J0" || ev.Table != "orders" || ev.Trigger != "schedule" || ev.Full || ev.Version != 0 {
				t.Fatalf("%+v", ev)
			}
		},
	},
	{
		name: "table.extracted version 1",
		payload: `{"version":1,"run_id":"01J1","table":"deals","time":"2024-05-01T10:00:00Z","files":["/s/a.csv","/s/b.csv"],` +
			`"format":{"delimiter":44,"quote":34,"header":false,"encoding":"utf-8"},"columns":[{"name":"id","type":"INTEGER"}],` +
			`"temporary":true,"bytes":1234,"changed_since":"2024-04-24T10:00:00Z"}`,
		into: func() any { return &pipeline.TableExtracted{} },
		check: func(t *testing.T, e any) {
			ev := e.(*pipeline.TableExtracted)
			if len(ev.Files) != 2 || !ev.Temporary || ev.Bytes != 1234 || ev.ChangedSince == nil ||
				!ev.ChangedSince.Equal(time.Date(2024, 4, 24, 10, 0, 0, 0, time.UTC)) || ev.Chunk != nil {
				t.Fatalf("%+v", ev)
			}
		},
	},
	{
		name: "table.converted version 1 without warnings, source or chunk",
		payload: `{"version":1,"run_id":"01J1","table":"deals","time":"2024-05-01T10:00:01Z","path":"crm/deals.parquet",` +
			`"rows":3,"columns":3,"bytes":999}`,
		into: func() any { return &pipeline.TableConverted{} },
		check: func(t *testing.T, e any) {
			ev := e.(*pipeline.TableConverted)
			if ev.Path != "crm/deals.parquet" || ev.Rows != 3 || ev.Warnings != nil || ev.Source != "" {
				t.Fatalf("%+v", ev)
			}
		},
	},
	{
		name:    "table.published version 1",
		payload: `{"version":1,"run_id":"01J1","table":"deals","time":"2024-05-01T10:00:02Z","manifest_version":7,"files":1,"rows":3}`,
		into:    func() any { return &pipeline.TablePublished{} },
		check: func(t *testing.T, e any) {
			ev := e.(*pipeline.TablePublished)
			if ev.ManifestVersion != 7 || ev.Files != 1 || ev.Rows != 3 {
				t.Fatalf("%+v", ev)
			}
		},
	},
}

func TestOldEventsStillDecode(t *testing.T) {
	for _, fe := range frozenEvents {
		t.Run(fe.name, func(t *testing.T) {
			e := fe.into()
			if err := pipeline.Decode(message.NewMessage("m1", []byte(fe.payload)), e); err != nil {
				t.Fatal(err)
			}
			fe.check(t, e)
		})
	}
}

// An event from a newer binary (say, during a rolling upgrade with NATS workers) is refused,
// not half-read: the message goes to the poison topic and can be replayed after the upgrade.
func TestNewerEventIsRefused(t *testing.T) {
	msg := message.NewMessage("m2", []byte(`{"version":99,"run_id":"r","table":"t","trigger":"manual","new_field":1}`))
	err := pipeline.Decode(msg, &pipeline.SyncRequested{})
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("want a version error, got %v", err)
	}
}
