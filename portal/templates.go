package portal

import (
	"fmt"
	"html/template"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// parsePages parses every page together with the layout; a broken template is a bug caught by
// the tests, so it panics.
func parsePages() map[string]*template.Template {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.New(name).Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", f))
	}
	return pages
}

var templateFuncs = template.FuncMap{
	"rows":  fmtRows,
	"size":  fmtSize,
	"when":  fmtWhen,
	"ago":   fmtAgo,
	"secs":  fmtSeconds,
	"num":   func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
	"pct":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + "%" },
	"lower": strings.ToLower,
	"add":   func(a, b int) int { return a + b },
	"half":  func(n int) float64 { return float64(n) / 2 },
	"cut":   cutText,
}

// cutText shortens s to n characters and an ellipsis.
func cutText(n int, s string) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// fmtRows groups digits: 1,234,567.
func fmtRows(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtSize(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(b)/float64(div), "KMGTPE"[exp])
}

func asTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t != nil {
			return *t, !t.IsZero()
		}
	}
	return time.Time{}, false
}

func fmtWhen(v any) string {
	t, ok := asTime(v)
	if !ok {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func fmtAgo(v any) string {
	t, ok := asTime(v)
	if !ok {
		return "never"
	}
	d := time.Since(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = "moments"
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d.Hours()))
	default:
		s = fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func fmtSeconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%d ms", int(s*1000))
	}
	return fmt.Sprintf("%.1f s", s)
}
