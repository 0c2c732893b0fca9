package handlers

import (
	"path/filepath"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ai-data-analyst/analyst/pipeline"
	"github.com/ai-data-analyst/analyst/store"
)

// publish makes a profiled table's new version visible to analysts: the schema files are
// regenerated from the Parquet footers (private tables only into the private copy), then the
// manifest analysts pull from is refreshed (a new version only when a file changed).
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
		m, err := e.updateManifest()
		if err != nil {
			return out, err
		}
		out.ManifestVersion = m.Version
		for _, f := range m.Files {
			if f.Table == in.Table {
				out.Files++
			}
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

// updateManifest rescans everything the manifest covers: stat calls, plus hashing only the
// files whose size or modification time changed. A full rescan also drops tables that left the
// catalogue and picks up docs edited between syncs.
func (e *Env) updateManifest() (*store.Manifest, error) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	files, err := store.ScanPublished(e.Config)
	if err != nil {
		return nil, err
	}
	m, changed, err := store.UpdateManifest(store.ManifestPath(e.Config), files, e.Now())
	if err != nil {
		return nil, err
	}
	if changed {
		e.Logger.Info("manifest updated", "version", m.Version, "files", len(m.Files))
	}
	return m, nil
}
