#!/usr/bin/env bash
# Benchmarks `analyst pull` against `rsync -a --delete` (rsync daemon) on 127.0.0.1 over the same
# published Parquet: first pull, no-change pull, one-file-changed pull.
# Usage: bench/pull/run.sh [FILES] [SIZE] [WORKDIR]     e.g. bench/pull/run.sh 1000 1GB /tmp/bench
# The files are generated once per FILES/SIZE and reused. rsync is installed when missing.
set -euo pipefail
files="${1:-1000}"
size="${2:-1GB}"
work="${3:-${TMPDIR:-/tmp}/analyst-bench-pull}"
if ! command -v rsync >/dev/null; then
  echo "installing rsync ..." >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq && $sudo apt-get install -y -qq rsync >/dev/null
fi
mkdir -p "$work"
cd "$(dirname "$0")/../.."
go build -o "$work/analyst" ./cmd/analyst
go build -o "$work/bench-pull" ./bench/pull
exec "$work/bench-pull" -analyst "$work/analyst" -dir "$work" -files "$files" -size "$size" "${@:4}"
