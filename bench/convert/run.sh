#!/usr/bin/env bash
# Benchmarks store.ConvertCSV against DuckDB's COPY ... TO parquet on a generated 20-column CSV.
# Usage: bench/convert/run.sh [SIZE] [WORKDIR]     e.g. bench/convert/run.sh 200MB /tmp/bench
# SIZE defaults to 1GB; the CSV is generated once per size and reused.
set -euo pipefail
size="${1:-1GB}"
work="${2:-${TMPDIR:-/tmp}/analyst-bench-convert}"
mkdir -p "$work"
cd "$(dirname "$0")/../.."
go build -o "$work/convert" ./bench/convert
exec "$work/convert" run -size "$size" -dir "$work" -declared
