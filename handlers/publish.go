package handlers

import (
	"path/filepath"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// publish makes a profiled table's new version visible to analysts: the schema files are
// regenerated from the Parquet footers (private tables only into the private copy).
func (e *Env) publish(msg *message.Message) ([]pipeline.Event, error) {
	var in pipeline.TableProfiled
	if err := pipeline.Decode(msg, &in); err != nil {
		return nil, pipeline.Permanent(err)
	}
	return once(e, StagePublish, msg, func() (pipeline.TablePublished, error) {
		out := pipeline.TablePublished{Rows: in.Rows}
		pipeline.Stamp(&out.Header, in.RunID, in.Table)
		if err := e.writeSchemaFiles(); err != nil {
			return out, err
		}
		return out, nil
	})
}

func (e *Env) writeSchemaFiles() error {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	meta := e.Config.Paths.Metadata
	_, err := store.WriteSchemaFiles(e.Config.Catalogue.Tables, store.SchemaFiles{
		ParquetRoot: e.Config.Paths.Parquet,
		Public:      filepath.Join(meta, "schema.yml"),
		Private:     filepath.Join(meta, "private", "schema.yml"),
		DatasetDir:  filepath.Join(meta, "datasets"),
		IsPrivate:   e.Config.IsPrivate,
		Source:      "AI Data Analyst",
		Now:         e.Now(),
	})
	return err
}
