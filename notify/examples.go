package notify

import "embed"

// Examples are the example scripts offered to analysts (data freshness, revenue drop on the
// demo's orders, a daily chart), under "examples/<name>".
//
//go:embed examples
var Examples embed.FS
