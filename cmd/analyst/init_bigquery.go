package main

import (
	"context"

	"github.com/ai-data-analyst/analyst/connectors"
	"github.com/ai-data-analyst/analyst/connectors/bigquery" // registers the "bigquery" source
)

// bigqueryProposals lists the dataset's tables with their schemas and sizes.
func bigqueryProposals(ctx context.Context, c connectors.Connector) ([]*proposal, error) {
	src, ok := c.(*bigquery.Source)
	if !ok {
		return nil, nil
	}
	tables, err := src.Tables(ctx)
	if err != nil {
		return nil, err
	}
	var out []*proposal
	for _, t := range tables {
		p := &proposal{ID: t.ID, Name: safeName(t.Name), Folder: folderFor(t.ID[:len(t.ID)-len(t.Name)-1]),
			Description: t.Description, Rows: t.Rows, Bytes: t.Bytes, Columns: t.Columns, PartitionBy: t.PartitionBy}
		p.PrimaryKey, p.PKGuessed = guessPrimaryKey(p.Name, p.Columns), true
		out = append(out, p)
	}
	return out, nil
}
