// Package jira owns the Jira Cloud side of the server: the REST client (issues with their full
// comment and changelog history, remote links, SLA fields through the service account, JQL
// search, attachment downloads), the raw issue store (data/raw/jira/issues/<KEY>.json), the
// transform of one raw issue into rows of the six Jira tables, and the month partition writer
// that replaces data/parquet/jira/<table>/<YYYY-MM>.parquet atomically.
package jira

import "github.com/apache/arrow-go/v18/arrow"

// Kind is the type of a column: every column is nullable.
type Kind int

const (
	String    Kind = iota // Parquet BYTE_ARRAY UTF8
	Int64                 // Parquet INT64
	Timestamp             // Parquet INT64 TIMESTAMP(MICROS, isAdjustedToUTC=true)
)

// Column is one column of a Jira table.
type Column struct {
	Name string
	Kind Kind
}

// Table is a Jira table's name (also its folder under data/parquet/jira) and columns in order.
type Table struct {
	Name    string
	Columns []Column
}

func cols(kind Kind, names ...string) []Column {
	out := make([]Column, len(names))
	for i, n := range names {
		out[i] = Column{n, kind}
	}
	return out
}

func concat(parts ...[]Column) []Column {
	var out []Column
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// The six tables, with the reference's columns, order and types.
var (
	IssuesTable = Table{"issues", concat(
		cols(String, "issue_key", "issue_id", "issue_url", "summary", "description", "issue_type", "status",
			"status_category", "priority", "resolution", "project_key", "project_name", "creator_email", "creator_name",
			"reporter_email", "reporter_name", "assignee_email", "assignee_name"),
		cols(Timestamp, "created_at", "updated_at", "resolved_at"),
		cols(String, "due_date", "labels"),
		cols(Int64, "attachment_count", "comment_count", "issuelink_count"),
		cols(String, "request_type", "request_status", "severity", "triage", "configuration_item", "participants",
			"organizations", "spam", "context", "custom_url", "slack_link", "technical_issue_category", "email_address"),
		cols(Int64, "satisfaction"),
		cols(String, "first_response_breached"),
		cols(Int64, "first_response_goal_millis", "first_response_elapsed_millis"),
		cols(String, "time_to_resolution_breached"),
		cols(Int64, "time_to_resolution_goal_millis", "time_to_resolution_elapsed_millis"),
		cols(String, "l3_team", "_synced_at", "_raw_file"),
	)}
	CommentsTable = Table{"comments", concat(
		cols(String, "comment_id", "issue_key", "author_email", "author_name", "body"),
		cols(Timestamp, "created_at", "updated_at"),
		cols(String, "update_author_email"),
	)}
	AttachmentsTable = Table{"attachments", concat(
		cols(String, "attachment_id", "issue_key", "filename", "local_path", "hierarchical_path"),
		cols(Int64, "size_bytes"),
		cols(String, "mime_type", "author_email"),
		cols(Timestamp, "created_at"),
		cols(String, "content_url", "thumbnail_url"),
	)}
	ChangelogTable = Table{"changelog", concat(
		cols(String, "change_id", "issue_key", "author_email", "author_name", "field_name", "field_type", "from_value", "to_value"),
		cols(Timestamp, "changed_at"),
	)}
	IssueLinksTable = Table{"issuelinks", cols(String, "issue_key", "link_id", "link_type", "direction",
		"linked_issue_key", "linked_issue_summary", "linked_issue_status", "linked_issue_priority")}
	RemoteLinksTable = Table{"remote_links", cols(String, "issue_key", "remote_link_id", "url", "title",
		"application_name", "application_type")}
)

// Tables returns the six tables in write order; issues gains one string column per extra custom
// field (configured names that are not among the reference's), sorted by name.
func Tables(extra []string) []Table {
	issues := IssuesTable
	if len(extra) > 0 {
		issues.Columns = append(append([]Column(nil), issues.Columns...), cols(String, extra...)...)
	}
	return []Table{issues, CommentsTable, AttachmentsTable, ChangelogTable, IssueLinksTable, RemoteLinksTable}
}

// TableNames are the six tables' names in write order.
var TableNames = []string{"issues", "comments", "attachments", "changelog", "issuelinks", "remote_links"}

var timestampType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

func (k Kind) arrow() arrow.DataType {
	switch k {
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case Timestamp:
		return timestampType
	default:
		return arrow.BinaryTypes.String
	}
}

// Schema is the table's Arrow schema.
func (t Table) Schema() *arrow.Schema {
	fields := make([]arrow.Field, len(t.Columns))
	for i, c := range t.Columns {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Kind.arrow(), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// Row is one row: each value is nil, a string, an int64 or a time.Time, matching its column.
type Row []any

// Rows are one issue's rows of the six tables, by table name.
type Rows map[string][]Row
