#!/usr/bin/env bash
# CPU LoRA training of a random Qwen2.5-0.5B-shaped model: lorafit vs transformers + PEFT,
# same shapes (LoRA r 64 all-linear, batch 2 × T, checkpointing on and off), 2 threads each,
# one process per configuration (peak RSS is per process). Results go to docs/performance.md.
# Usage: T=384 bash bench/train_vs_peft.sh [BUILD_DIR] [MODEL_DIR]
#   BUILD_DIR defaults to ./build (needs bench_train_step built); MODEL_DIR to
#   /tmp/lorafit-bench-qwen2.5-0.5b (created on first run, ~1 GB). PYTHON defaults to /opt/gv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-/tmp/lorafit-bench-qwen2.5-0.5b}
PY=${PYTHON:-/opt/gv/bin/python}
T=${T:-384}
# Idle OpenMP threads sleep instead of spinning: on a shared machine spinning burns the cores
# the other side of the comparison (or other users) need. Applies to both sides.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

"$PY" bench/forward_baseline.py --dir "$MODEL" --make-only
# The machine load goes into the log: on a shared machine only same-run comparisons mean much.
for CK in 1 0; do
  echo "== lorafit checkpointing=$CK T=$T (OMP_NUM_THREADS=2), load $(cut -d' ' -f1-3 /proc/loadavg)"
  OMP_NUM_THREADS=2 LORAFIT_BENCH_MODEL="$MODEL" "$BUILD/bench/bench_train_step" \
    --benchmark_filter="BM_TrainStep/$CK/$T/" --benchmark_counters_tabular=true
  echo "== transformers + PEFT checkpointing=$CK T=$T (torch threads 2), load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$PY" bench/train_baseline.py --dir "$MODEL" --T "$T" --checkpointing "$CK"
done
