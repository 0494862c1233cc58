#!/usr/bin/env bash
# lorafit dashboard end to end: serves the fixture runs with the page embedded in the binary,
# refuses traversal, reports a busy port and a missing folder clearly, and the page script
# never turns run data into HTML.
#   bash dashboard.sh <lorafit> <source root>
set -euo pipefail
LORAFIT=$1
SRC=$2
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

get() {  # get PATH → body on stdout, status in $work/status
  python3 - "$1" "$work/status" <<'PY'
import sys, urllib.request, urllib.error
url, status_file = sys.argv[1], sys.argv[2]
try:
    r = urllib.request.urlopen(url, timeout=10)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
open(status_file, "w").write(str(code))
sys.stdout.buffer.write(body)
PY
}

# Run from an empty folder: the page must come from the binary, not from web/ on disk.
cp -r "$SRC/tests/fixtures/run/runs" "$work/runs"
mkdir "$work/cwd"
(cd "$work/cwd" && exec "$LORAFIT" dashboard "$work/runs" --port 0 > "$work/out.txt" 2> "$work/err.txt") &
server_pid=$!
for _ in $(seq 100); do grep -q "http://" "$work/out.txt" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$work/out.txt") || fail "no URL printed: $(cat "$work/out.txt" "$work/err.txt")"
port=$(echo "$url" | grep -o '[0-9]*/$' | tr -d /)

get "$url" > "$work/index.html"
[ "$(cat "$work/status")" = 200 ] || fail "GET / status $(cat "$work/status")"
grep -q "<title>lorafit dashboard</title>" "$work/index.html" || fail "index.html not served"
for f in app.js chart.js style.css; do
  get "$url$f" > "$work/$f"
  [ "$(cat "$work/status")" = 200 ] || fail "GET /$f status $(cat "$work/status")"
  cmp -s "$work/$f" "$SRC/web/$f" || fail "/$f differs from web/$f (stale embed?)"
done
# The page sets run data with textContent only (comment lines may name the sinks).
if grep -nE 'innerHTML|outerHTML|insertAdjacentHTML|document\.write' "$work/app.js" "$work/chart.js" | grep -vE '^[^:]*:[0-9]+:[[:space:]]*//'; then
  fail "the page script uses an HTML sink"
fi

runs=$(get "${url}api/runs")
echo "$runs" | python3 -c '
import json, sys
runs = {r["id"]: r for r in json.load(sys.stdin)["runs"]}
assert sorted(runs) == ["killed", "lr1e-4", "lr2e-4"], sorted(runs)
assert runs["lr1e-4"]["status"] == "finished" and runs["lr2e-4"]["status"] == "failed"
assert runs["killed"]["last_step"] == 12
' || fail "/api/runs: $runs"

for p in "api/metrics?id=../../../etc" "api/run?id=%2Fetc" "..%2F..%2F..%2Fetc%2Fpasswd" "../../../../etc/passwd" "lr1e-4/config.json"; do
  body=$(get "$url$p")
  [ "$(cat "$work/status")" = 404 ] || [ "$(cat "$work/status")" = 400 ] || fail "GET /$p was served ($(cat "$work/status"))"
  case "$body" in *root:*|*learning_rate*) fail "GET /$p leaked a file";; esac
done

# A second dashboard on the same port: a clear error naming the port.
if "$LORAFIT" dashboard "$work/runs" --port "$port" > /dev/null 2> "$work/err2.txt"; then
  fail "a second server on port $port started"
fi
grep -q "port $port is in use" "$work/err2.txt" || fail "busy port message: $(cat "$work/err2.txt")"

# A missing runs folder is named.
if "$LORAFIT" dashboard "$work/no-such-runs" --port 0 > /dev/null 2> "$work/err3.txt"; then
  fail "a missing runs folder was accepted"
fi
grep -q "runs folder $work/no-such-runs does not exist" "$work/err3.txt" || fail "missing folder message: $(cat "$work/err3.txt")"
echo "PASS"
