#!/usr/bin/env bash
# lorafit train --dashboard: the dashboard of the runs folder is served while training runs,
# its URL is printed, and the API lists the run being trained.
# Usage: bash train_dashboard.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$W"' EXIT
make_stories "$W/stories.jsonl" 40
PORT=$((20000 + RANDOM % 20000))

# Steps enough for hours: training is surely still running while we ask the server (it is
# killed once the server has answered).
"$BIN" train --model "$SRC/tests/data/stories260K" --data "$W/stories.jsonl" --output_dir "$W/runs/run1" \
  --dataset_format text --lora_r 4 --per_device_train_batch_size 2 --gradient_accumulation_steps 1 \
  --max_steps 10000000 --logging_steps 1 --save_steps 1000 --eval_range 0:2 --num_samples 1 \
  --max_new_tokens 4 --cache_dir "$W/cache" --dashboard --dashboard_port "$PORT" > "$W/log.txt" 2>&1 &
PID=$!

# url_printed: the URL line is in the log (fails the test if train exited first).
url_printed() {
  grep -qE '^dashboard: http' "$W/log.txt" && return 0
  kill -0 "$PID" 2>/dev/null || { cat "$W/log.txt"; fail "train exited before printing the dashboard URL"; }
  return 1
}
wait_until 300 url_printed || { cat "$W/log.txt"; fail "no dashboard URL in 300 s"; }
url=$(sed -nE 's/^dashboard: (http[^ ]+)$/\1/p' "$W/log.txt")
[ "$url" = "http://127.0.0.1:$PORT/" ] || { cat "$W/log.txt"; fail "dashboard URL: '$url'"; }

# the run folder is listed as soon as config.yaml exists; status.json follows a moment later
runs=""
run1_running() {
  runs=$(curl -sf "${url}api/runs" || true)
  echo "$runs" | grep -q '"run1"' && echo "$runs" | grep -q '"running"'
}
wait_until 300 run1_running || true
echo "$runs" | grep -q '"run1"' || { cat "$W/log.txt"; fail "/api/runs does not list run1: $runs"; }
echo "$runs" | grep -q '"running"' || fail "run1 is not shown running: $runs"
kill "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
PID=""

# A port in use is a clear error naming the port.
# The holder says when it listens (python may start slowly on a loaded machine); a port of
# its own, since connections of the run above may linger on theirs.
PORT=$((PORT + 2))
python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); open(sys.argv[2], "w").close(); time.sleep(30)' "$PORT" "$W/holding" &
HOLD=$!
wait_until 120 test -e "$W/holding" || fail "could not hold port $PORT for the busy-port check"
if timeout 120 "$BIN" train --model "$SRC/tests/data/stories260K" --data "$W/stories.jsonl" --output_dir "$W/runs/run2" \
     --dataset_format text --max_steps 1 --cache_dir "$W/cache" --dashboard --dashboard_port "$PORT" > "$W/log2.txt" 2>&1; then
  kill "$HOLD"; fail "train with a busy dashboard port exited 0"
fi
kill "$HOLD" 2>/dev/null || true
grep -q "$PORT" "$W/log2.txt" || { cat "$W/log2.txt"; fail "busy-port error does not name the port"; }
# ... and the flag of train that changes it (not dashboard's --port).
grep -qF "choose a free port with --dashboard_port" "$W/log2.txt" || { cat "$W/log2.txt"; fail "busy-port error names the wrong flag"; }

# After training the dashboard keeps serving (saying so) until Ctrl-C, then says it stopped.
PORT2=$((PORT + 1))  # (PORT was moved by 2 above)
"$BIN" train --model "$SRC/tests/data/stories260K" --data "$W/stories.jsonl" --output_dir "$W/runs/run3" \
  --dataset_format text --lora_r 2 --max_steps 2 --eval_range 0:2 --num_samples 0 --cache_dir "$W/cache" \
  --dashboard --dashboard-port "$PORT2" > "$W/log3.txt" 2>&1 &
PID=$!
keeps_serving() {
  grep -q "keeps serving" "$W/log3.txt" && return 0
  kill -0 "$PID" 2>/dev/null || { cat "$W/log3.txt"; fail "train --dashboard exited after training"; }
  return 1
}
wait_until 300 keeps_serving || true
grep -qF "training finished; the dashboard keeps serving at http://127.0.0.1:$PORT2/ (Ctrl-C to stop)" "$W/log3.txt" ||
  { cat "$W/log3.txt"; fail "no keeps-serving line"; }
sleep 0.5
kill -0 "$PID" 2>/dev/null || fail "the dashboard stopped by itself"
runs=$(curl -sf "http://127.0.0.1:$PORT2/api/runs") || fail "the dashboard does not answer after training"
echo "$runs" | grep -q '"run3"' || fail "/api/runs after training: $runs"
kill -INT "$PID"
rc=0; wait "$PID" || rc=$?
PID=""
[ "$rc" = 0 ] || { cat "$W/log3.txt"; fail "Ctrl-C after training: exit $rc"; }
tail -1 "$W/log3.txt" | grep -qx "dashboard stopped" || { cat "$W/log3.txt"; fail "no 'dashboard stopped' line"; }
echo PASS
