package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

func init() {
	register(command{name: "events", usage: "[--topic T] [--follow] [--json]  read the event log", run: runEvents})
}

// eventLine is one event as `analyst events --json` prints it.
type eventLine struct {
	Topic    string            `json:"topic"`
	Seq      uint64            `json:"seq"`
	Time     time.Time         `json:"time"`
	RunID    string            `json:"run_id"`
	Table    string            `json:"table"`
	UUID     string            `json:"uuid"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Event    json.RawMessage   `json:"event,omitempty"`
}

func runEvents(ctx context.Context, g *globals, args []string) error {
	fs := g.flags("events")
	topic := fs.String("topic", "", "only this topic (default: all)")
	follow := fs.Bool("follow", false, "keep printing new events")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(g, openOptions{})
	if err != nil {
		return err
	}
	db, err := store.OpenDB(cfg.Paths.Store)
	if err != nil {
		return err
	}
	defer store.CloseDB(db)
	log, err := pipeline.NewBoltPubSub(db, nil)
	if err != nil {
		return err
	}
	defer log.Close()
	return printEvents(ctx, log, *topic, *follow, *asJSON, os.Stdout)
}

// printEvents prints the log in publish order across topics, then (with follow) new events.
func printEvents(ctx context.Context, log *pipeline.BoltPubSub, topic string, follow, asJSON bool, out io.Writer) error {
	offsets := map[string]uint64{}
	for {
		topics := []string{topic}
		if topic == "" {
			var err error
			if topics, err = log.Topics(); err != nil {
				return err
			}
		}
		var batch []pipeline.Record
		for _, t := range topics {
			recs, err := log.Read(t, offsets[t], 0)
			if err != nil {
				return err
			}
			if len(recs) > 0 {
				offsets[t] = recs[len(recs)-1].Seq
			}
			batch = append(batch, recs...)
		}
		sort.SliceStable(batch, func(i, j int) bool { return batch[i].Time.Before(batch[j].Time) })
		for _, r := range batch {
			printEvent(out, r, asJSON)
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func printEvent(out io.Writer, r pipeline.Record, asJSON bool) {
	if !asJSON {
		fmt.Fprintf(out, "%s  %-24s run=%s table=%s\n", r.Time.Format("2006-01-02 15:04:05.000"), r.Topic, r.Metadata.Get(pipeline.MetaRunID), r.Metadata.Get(pipeline.MetaTable))
		return
	}
	line := eventLine{Topic: r.Topic, Seq: r.Seq, Time: r.Time, RunID: r.Metadata.Get(pipeline.MetaRunID), Table: r.Metadata.Get(pipeline.MetaTable), UUID: r.UUID, Metadata: r.Metadata}
	if json.Valid(r.Payload) && len(r.Payload) > 0 {
		line.Event = r.Payload
	}
	b, _ := json.Marshal(line)
	fmt.Fprintln(out, string(b))
}
