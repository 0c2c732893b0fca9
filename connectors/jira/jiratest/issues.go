package jiratest

import (
	"fmt"
	"strconv"
	"time"
)

// Shape says how much an issue built by NewIssue carries.
type Shape struct {
	Comments    int // comments with ADF bodies
	Histories   int // changelog histories, two items each
	Attachments int // attachments whose content the fake serves
	Links       bool
}

func user(name string) map[string]any {
	return map[string]any{
		"accountId": "acc-" + name, "emailAddress": name + "@example.com", "displayName": "User " + name,
		"active": true, "timeZone": "Europe/Prague", "accountType": "atlassian",
	}
}

func doc(content ...any) map[string]any {
	return map[string]any{"type": "doc", "version": 1, "content": content}
}

func para(content ...any) map[string]any {
	return map[string]any{"type": "paragraph", "content": content}
}

func text(s string) map[string]any { return map[string]any{"type": "text", "text": s} }

func option(v string) map[string]any {
	return map[string]any{"self": "https://example/option", "value": v, "id": "1" + strconv.Itoa(len(v))}
}

func slaField(ongoing bool, breached bool, goal, elapsed int64) map[string]any {
	cycle := map[string]any{
		"startTime":     map[string]any{"iso8601": "2025-01-15T10:00:00+0100", "epochMillis": 1736931600000},
		"breached":      breached,
		"goalDuration":  map[string]any{"millis": goal, "friendly": "4h"},
		"elapsedTime":   map[string]any{"millis": elapsed, "friendly": "1h"},
		"remainingTime": map[string]any{"millis": goal - elapsed, "friendly": "3h"},
	}
	f := map[string]any{"id": "1", "name": "Time to first response", "_links": map[string]any{}, "completedCycles": []any{}}
	if ongoing {
		f["ongoingCycle"] = cycle
	} else {
		f["completedCycles"] = []any{map[string]any{"breached": !breached, "goalDuration": map[string]any{"millis": 1}, "elapsedTime": map[string]any{"millis": 2}}, cycle}
	}
	return f
}

// NewIssue builds an issue as Jira returns it with fields=*all: ADF description with a mention
// and a link, the reference's custom fields (SLA included), and what shape asks for. The
// changelog is kept as the plain list of histories (the fake wraps and pages it).
func (s *Server) NewIssue(key string, id int, created string, shape Shape) map[string]any {
	ids := strconv.Itoa(id)
	f := map[string]any{
		"summary":    "Summary of " + key,
		"issuetype":  map[string]any{"name": "Service Request"},
		"project":    map[string]any{"key": "SUP", "name": "Support"},
		"status":     map[string]any{"name": "In Progress", "statusCategory": map[string]any{"name": "In Progress"}},
		"priority":   map[string]any{"name": "High"},
		"resolution": nil, "resolutiondate": nil, "duedate": "2025-02-01",
		"creator": user("creator"), "reporter": user("reporter"), "assignee": user("agent"),
		"created": created, "updated": created,
		"labels": []any{"billing", "čeština"},
		"description": doc(
			para(text("Hello "), map[string]any{"type": "mention", "attrs": map[string]any{"id": "acc-agent", "text": "@User agent"}}, text(", see "),
				map[string]any{"type": "text", "text": "the docs", "marks": []any{map[string]any{"type": "link", "attrs": map[string]any{"href": "https://docs.example.com/x"}}}}),
			para(text("Second line"), map[string]any{"type": "hardBreak"}, text("third"))),
		"customfield_10010": map[string]any{"requestType": map[string]any{"name": "Get IT help"}, "currentStatus": map[string]any{"status": "Waiting for support"}},
		"customfield_10004": option("Sev 2"),
		"customfield_10323": []any{option("Needs triage"), option("Billing")},
		"customfield_10511": []any{option("CI-1")},
		"customfield_10156": []any{user("p1"), map[string]any{"accountId": "x", "displayName": "No Email"}},
		"customfield_10002": []any{map[string]any{"id": "3", "name": "Acme Corp"}},
		"customfield_10365": option("No"),
		"customfield_10330": doc(para(text("Context here"))),
		"customfield_10325": "https://app.example.com/tickets/" + ids,
		"customfield_10350": option("https://slack.example.com/archives/C1"),
		"customfield_10676": option("Login"),
		"customfield_10475": option("customer@example.org"),
		"customfield_10157": map[string]any{"rating": 4, "comment": "ok"},
		"customfield_10328": slaField(true, false, 14400000, 3600000),
		"customfield_10161": slaField(false, true, 28800000, 30000000),
		"customfield_11831": option("Team Blue"),
		"attachment":        []any{},
		"issuelinks":        []any{},
	}
	base, _ := time.Parse("2006-01-02T15:04:05.000-0700", created)
	var comments []any
	for i := range shape.Comments {
		at := base.Add(time.Duration(i+1) * time.Hour).Format("2006-01-02T15:04:05.000-0700")
		comments = append(comments, map[string]any{
			"id": fmt.Sprintf("%d%03d", id, i), "self": s.URL + "/rest/api/3/issue/" + ids + "/comment/" + strconv.Itoa(i),
			"author": user("agent"), "updateAuthor": user("agent"),
			"body":    doc(para(text(fmt.Sprintf("Comment %d on %s", i, key)))),
			"created": at, "updated": at, "jsdPublic": true,
		})
	}
	f["comment"] = map[string]any{"comments": comments, "maxResults": len(comments), "total": len(comments), "startAt": 0}
	for i := range shape.Attachments {
		aid := fmt.Sprintf("%d%02d", id, i)
		s.AddFile(aid, []byte(fmt.Sprintf("content of attachment %s of %s", aid, key)))
		f["attachment"] = append(f["attachment"].([]any), map[string]any{
			"id": aid, "filename": fmt.Sprintf("screen shot %d.png", i), "author": user("reporter"), "created": created,
			"size": len(fmt.Sprintf("content of attachment %s of %s", aid, key)), "mimeType": "image/png",
			"content": s.FileURL(aid), "thumbnail": s.URL + "/rest/api/3/attachment/thumbnail/" + aid,
		})
	}
	if shape.Links {
		f["issuelinks"] = []any{
			map[string]any{"id": ids + "1", "type": map[string]any{"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
				"inwardIssue": map[string]any{"key": "SUP-1", "fields": map[string]any{"summary": "Blocker", "status": map[string]any{"name": "Done"}, "priority": map[string]any{"name": "Low"}}}},
			map[string]any{"id": ids + "2", "type": map[string]any{"name": "Relates"},
				"outwardIssue": map[string]any{"key": "OPS-7", "fields": map[string]any{"summary": "Related", "status": map[string]any{"name": "Open"}}}},
		}
	}
	var histories []any
	for i := range shape.Histories {
		at := base.Add(time.Duration(i+1) * time.Minute).Format("2006-01-02T15:04:05.000-0700")
		histories = append(histories, map[string]any{
			"id": fmt.Sprintf("%d%04d", id, i), "author": user("agent"), "created": at,
			"items": []any{
				map[string]any{"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "1", "fromString": "Open", "to": "3", "toString": "In Progress"},
				map[string]any{"field": "assignee", "fieldtype": "jira", "fieldId": "assignee", "from": nil, "fromString": nil, "to": "acc-agent", "toString": "User agent"},
			},
		})
	}
	return map[string]any{
		"id": ids, "key": key, "self": s.URL + "/rest/api/3/issue/" + ids,
		"fields": f, "changelog": histories,
	}
}
