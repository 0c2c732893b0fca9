// Package ops owns running the server as a service: the hardened systemd unit, the Caddy
// reverse-proxy example and the install script (embedded, so `analyst ops` prints them), and
// backup and restore of an instance (a streaming archive of the bbolt store, taken hot, plus
// configuration, docs and the Parquet tree).
package ops

import _ "embed"

// Unit is the systemd unit for `analyst serve` (ops/analyst.service).
//
//go:embed analyst.service
var Unit string

// Caddyfile is the reverse-proxy example with automatic TLS (ops/Caddyfile).
//
//go:embed Caddyfile
var Caddyfile string

// InstallScript sets the service up from the binary on Debian or Ubuntu (ops/install.sh).
//
//go:embed install.sh
var InstallScript string
