#!/usr/bin/env bash
# Portal load test: requests/s and p99 latency of the dashboard and the catalog with 100
# concurrent signed-in sessions, on the demo instance. Needs wrk and curl (Debian: apt-get
# install wrk curl). Usage: [CONNS=100] [PAGES="/ /catalog"] [VERBOSE=1] bench/portal/run.sh
# [DURATION] (default 20s); the 100 sessions are spread over CONNS connections; VERBOSE prints
# the latency distribution.
set -euo pipefail
duration=${1:-20s}
conns=${CONNS:-100}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=${PORT:-18090}
base=http://127.0.0.1:$port
token=ada_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')

go build -o "$work/analyst" "$root/cmd/analyst"
ANALYST_ADMIN_TOKEN=$token ANALYST_ADMIN_EMAIL=admin@localhost "$work/analyst" serve --home "$work/home" --addr "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  curl -fs "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
# Let the startup sync of the demo tables finish, so the pages show real data.
for _ in $(seq 1 120); do
  running=$(curl -fs -H "Authorization: Bearer $token" "$base/api/runs" | grep -c '"status":"\(queued\|running\)"' || true)
  [ "$running" = 0 ] && break
  sleep 0.5
done

# 100 sessions: 100 users, each signed in through a single-use link.
cookies=()
for i in $(seq 1 100); do
  email="bench$i@example.com"
  curl -fs -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"role\":\"analyst\"}" "$base/api/admin/users" >/dev/null
  link=$(curl -fs -X POST -H "Authorization: Bearer $token" "$base/api/admin/users/$email/login-link" | sed 's/.*"url":"\([^"]*\)".*/\1/')
  jar="$work/jar$i"
  csrf=$(curl -fs -c "$jar" -b "$jar" "$link" | sed -n 's/.*name="csrf-token" content="\([^"]*\)".*/\1/p')
  curl -fs -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$csrf" "$link"
  cookies+=("$(awk '$6=="analyst_session"{print $6"="$7}' "$jar")")
done

lua="$work/sessions.lua"
{
  echo "local cookies = {"
  for c in "${cookies[@]}"; do echo "  \"$c\","; done
  echo "}"
  cat <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", wrk.path, { Cookie = cookies[(n % #cookies) + 1] })
end
response = function(status)
  if status ~= 200 then error("status " .. status) end
end
LUA
} >"$lua"

# Warm up (the server settles after its startup sync; the first seconds are not typical).
wrk -t2 -c"$conns" -d5s -s "$lua" "$base/" >/dev/null
echo "portal load test: 100 sessions, $conns connections, 2 threads, $duration per page ($(nproc) cores)"
for page in ${PAGES:-/ /catalog /catalog/orders}; do
  out=$(wrk -t2 -c"$conns" -d"$duration" --latency -s "$lua" "$base$page")
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  p99=$(echo "$out" | awk '$1=="99%"{print $2}')
  p50=$(echo "$out" | awk '$1=="50%"{print $2}')
  errors=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}')
  printf '%-16s %10s req/s   p50 %8s   p99 %8s %s\n' "$page" "$rps" "$p50" "$p99" "$errors"
  if [ -n "${VERBOSE:-}" ]; then echo "$out" | sed -n "/Latency Distribution/,/99%/p"; fi
done
