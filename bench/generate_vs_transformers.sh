#!/usr/bin/env bash
# Batch-1 generation on the CPU, lorafit vs transformers (bf16 and fp32 paths on both sides),
# interleaved: ROUNDS rounds of [lorafit f32, lorafit bf16, transformers], 2 threads each, so both sides see the same machine
# load; then the median of each figure over the rounds, and lorafit's share of the machine's
# measured memory read bandwidth (printed by bench_generate_cpu). Results: docs/performance.md.
# Usage: ROUNDS=3 P=32 NEW=16 bash bench/generate_vs_transformers.sh [BUILD_DIR] [MODEL_DIR]
#   BUILD_DIR defaults to ./build (needs bench_generate_cpu), MODEL_DIR to
#   /tmp/lorafit-bench-qwen2.5-0.5b (created on first run, ~1 GB). PYTHON defaults to /opt/gv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-/tmp/lorafit-bench-qwen2.5-0.5b}
PY=${PYTHON:-/opt/gv/bin/python}
ROUNDS=${ROUNDS:-3}
P=${P:-32}
NEW=${NEW:-16}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}  # see forward_vs_transformers.sh
LOG=$(mktemp /tmp/lorafit-generate-bench.XXXXXX)

"$PY" bench/generate_baseline.py --dir "$MODEL" --make-only
grep -m1 "model name" /proc/cpuinfo | tee -a "$LOG"
for r in $(seq "$ROUNDS"); do
  echo "== round $r: lorafit (OMP_NUM_THREADS=2), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
  for DT in f32 bf16; do
    OMP_NUM_THREADS=2 "$BUILD/bench/bench_generate_cpu" --model "$MODEL" --prompt "$P" --new "$NEW" --reps 1 --dtype $DT | tee -a "$LOG"
  done
  echo "== round $r: transformers (torch threads 2), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
  "$PY" bench/generate_baseline.py --dir "$MODEL" --prompt "$P" --new "$NEW" --reps 1 | tee -a "$LOG"
done
python3 bench/medians.py "$LOG" \
  '^(?P<label>\S+ \S+) generate .*ttft (?P<ttft_s>[0-9.]+) s, decode (?P<decode_tok_s>[0-9.]+) tokens/s' \
  '^(?P<label>memory \S+) read bandwidth (?P<GB_s>[0-9.]+) GB/s.*= (?P<decode_share_pct>[0-9.]+)% of it'
echo "log: $LOG"
