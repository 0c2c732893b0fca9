package jira

import (
	"strings"
	"time"
)

// ADFText flattens an Atlassian Document Format value to plain text. Blocks (paragraphs,
// headings, list items, table rows...) go on their own lines; mentions, emoji, dates, status
// lozenges and smart links keep their visible text, and a link keeps its URL after the text.
// A plain string is returned as it is; anything else gives "".
func ADFText(v any) string {
	var b strings.Builder
	renderADF(&b, v)
	return strings.TrimSpace(b.String())
}

// inline nodes are concatenated; everything else is a block and starts on a new line.
var inlineNodes = map[string]bool{
	"text": true, "hardBreak": true, "mention": true, "emoji": true, "inlineCard": true,
	"date": true, "status": true, "mediaInline": true, "placeholder": true, "inlineExtension": true,
}

func renderADF(b *strings.Builder, v any) {
	switch n := v.(type) {
	case string:
		b.WriteString(n)
	case []any:
		renderChildren(b, n, "")
	case map[string]any:
		renderNode(b, n)
	}
}

func renderNode(b *strings.Builder, n map[string]any) {
	typ, _ := n["type"].(string)
	attrs, _ := n["attrs"].(map[string]any)
	attr := func(k string) string { s, _ := attrs[k].(string); return s }
	switch typ {
	case "text":
		text, _ := n["text"].(string)
		b.WriteString(text)
		if href := linkMark(n); href != "" && href != text {
			b.WriteString(" (" + href + ")")
		}
		return
	case "hardBreak":
		b.WriteString("\n")
		return
	case "mention":
		text := attr("text")
		if text == "" {
			text = "@" + attr("id")
		}
		b.WriteString(text)
		return
	case "emoji":
		if t := attr("text"); t != "" {
			b.WriteString(t)
		} else {
			b.WriteString(attr("shortName"))
		}
		return
	case "inlineCard", "blockCard", "embedCard":
		b.WriteString(attr("url"))
		return
	case "status":
		b.WriteString(attr("text"))
		return
	case "date":
		if ms, ok := toInt(attrs["timestamp"]); ok {
			b.WriteString(time.UnixMilli(ms).UTC().Format("2006-01-02"))
		}
		return
	case "":
		// Not ADF: keep the reference's generic reading of "text" and "content".
		if text, ok := n["text"].(string); ok {
			b.WriteString(text)
		}
	}
	content, _ := n["content"].([]any)
	sep := ""
	switch typ {
	case "tableRow":
		sep = " | "
	case "bulletList", "orderedList", "taskList", "decisionList":
	case "listItem", "taskItem", "decisionItem":
		b.WriteString("- ")
	}
	renderChildren(b, content, sep)
}

// renderChildren writes inline children next to each other and block children on new lines
// (or separated by sep).
func renderChildren(b *strings.Builder, children []any, sep string) {
	first := true
	for _, c := range children {
		m, _ := c.(map[string]any)
		if typ, _ := m["type"].(string); m == nil || inlineNodes[typ] {
			renderADF(b, c)
			continue
		}
		var child strings.Builder
		renderADF(&child, c)
		text := strings.TrimSpace(child.String())
		if text == "" {
			continue
		}
		if !first && sep != "" {
			b.WriteString(sep)
		} else if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") && !strings.HasSuffix(s, "- ") {
			b.WriteString("\n")
		}
		b.WriteString(text)
		first = false
	}
}

func linkMark(n map[string]any) string {
	marks, _ := n["marks"].([]any)
	for _, m := range marks {
		mm, _ := m.(map[string]any)
		if mm["type"] == "link" {
			attrs, _ := mm["attrs"].(map[string]any)
			href, _ := attrs["href"].(string)
			return href
		}
	}
	return ""
}
