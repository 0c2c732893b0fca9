package portal

import (
	"strings"
	"testing"
)

// Charts are built outside html/template, so they must escape what the data says.
func TestChartEscapesLabels(t *testing.T) {
	var c columnProfile
	c.BooleanStats = nil
	c.StringStats = &struct {
		TopValues []struct {
			Value string
			Count int64
			Pct   *float64
		} `json:"top_values"`
	}{TopValues: []struct {
		Value string
		Count int64
		Pct   *float64
	}{{Value: `<img src=x onerror=alert(1)>`, Count: 3}, {Value: "ok", Count: 1}}}
	html := string(columnChart(c).HTML())
	if strings.Contains(html, "<img") || !strings.Contains(html, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Fatalf("label not escaped: %s", html)
	}
	if !strings.Contains(html, `width="100.00"`) || !strings.Contains(html, `width="33.33"`) {
		t.Fatalf("bars must be scaled to the largest count: %s", html)
	}
}
