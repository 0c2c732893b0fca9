#!/usr/bin/env bash
# Benchmarks catalog.ProfileParquet against DuckDB's SUMMARIZE on a generated 20-column Parquet file.
# Usage: bench/profile/run.sh [ROWS] [WORKDIR] [ROUNDS]     e.g. bench/profile/run.sh 5000000 /tmp/bench 3
# The file is generated once per row count and reused.
set -euo pipefail
rows="${1:-5000000}"
work="${2:-${TMPDIR:-/tmp}/analyst-bench-profile}"
rounds="${3:-3}"
mkdir -p "$work"
cd "$(dirname "$0")/../.."
go build -o "$work/profile" ./bench/profile
exec "$work/profile" run -rows "$rows" -dir "$work" -rounds "$rounds"
