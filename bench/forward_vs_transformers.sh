#!/usr/bin/env bash
# CPU forward of a random Qwen2.5-0.5B-shaped bf16 model: lorafit vs transformers, same
# shapes (B=1, T=128), 2 threads each, both paths on both sides (lorafit BM_Forward/T/bf16:0 =
# fp32 compute from the bf16 weights, bf16:1 = bf16 activations; transformers bf16 and fp32),
# interleaved: ROUNDS rounds of [lorafit, transformers], then the median of every figure.
# Usage: ROUNDS=3 T=128 bash bench/forward_vs_transformers.sh [BUILD_DIR] [MODEL_DIR]
#   BUILD_DIR defaults to ./build (needs bench_model_forward built), MODEL_DIR to
#   /tmp/lorafit-bench-qwen2.5-0.5b (created on first run, ~1 GB). PYTHON defaults to /opt/gv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-/tmp/lorafit-bench-qwen2.5-0.5b}
PY=${PYTHON:-/opt/gv/bin/python}
T=${T:-128}
ROUNDS=${ROUNDS:-3}
# Sleeping (not spinning) OpenMP waits, for both sides: on a shared, oversubscribed VM
# spinning threads of one parallel region wait for a descheduled sibling and a forward
# takes 3-4x longer (measured: 20 s active vs 5.8 s passive under load 12 on 2 cores).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
LOG=$(mktemp /tmp/lorafit-forward-bench.XXXXXX)

"$PY" bench/forward_baseline.py --dir "$MODEL" --make-only
grep -m1 "model name" /proc/cpuinfo | tee -a "$LOG"
for r in $(seq "$ROUNDS"); do
  echo "== round $r: lorafit (OMP_NUM_THREADS=2, OMP_WAIT_POLICY=$OMP_WAIT_POLICY), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
  OMP_NUM_THREADS=2 LORAFIT_BENCH_MODEL="$MODEL" "$BUILD/bench/bench_model_forward" \
    --benchmark_filter="BM_ModelLoad|BM_Forward/T:$T/" --benchmark_counters_tabular=true | tee -a "$LOG"
  echo "== round $r: transformers $("$PY" -c 'import transformers; print(transformers.__version__)') (torch threads 2), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
  "$PY" bench/forward_baseline.py --dir "$MODEL" --T "$T" --reps 3 | tee -a "$LOG"
done
python3 bench/medians.py "$LOG" \
  '^(?P<label>BM_Forward/T:\d+/bf16:\d)\S*\s+(?P<ms>[0-9.]+) ms\s+\S+ ms\s+\S+\s+(?P<tokens_s>[0-9.]+)/s' \
  '^(?P<label>transformers \S+) forward: (?P<s>[0-9.]+) s/iter, (?P<tokens_s>[0-9.]+) tokens/s'
echo "log: $LOG"
