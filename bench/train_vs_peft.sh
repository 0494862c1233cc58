#!/usr/bin/env bash
# CPU LoRA training of a random Qwen2.5-0.5B-shaped model: lorafit vs transformers + PEFT,
# same shapes (LoRA r 64 all-linear, batch 2 × T), 2 threads each, one process per
# configuration (peak RSS is per process). Both sides run both paths (fp32, and bf16 as
# Trainer(bf16=True); lorafit --bf16 false / true as BM_TrainStep/ckpt/T/bf16); ROUNDS rounds of
# [lorafit fp32, lorafit bf16, PEFT fp32, PEFT bf16] interleaved, so all see
# the same machine load, then the median of every figure. Results go to docs/performance.md.
# Usage: T=384 CKS="1 0" ROUNDS=3 bash bench/train_vs_peft.sh [BUILD_DIR] [MODEL_DIR]
#   BUILD_DIR defaults to ./build (needs bench_train_step built); MODEL_DIR to
#   /tmp/lorafit-bench-qwen2.5-0.5b (created on first run, ~1 GB). PYTHON defaults to /opt/gv/bin/python.
#   LORAFIT_BENCH_ARGS: extra arguments for bench_train_step.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-/tmp/lorafit-bench-qwen2.5-0.5b}
PY=${PYTHON:-/opt/gv/bin/python}
T=${T:-384}
CKS=${CKS:-1 0}
ROUNDS=${ROUNDS:-1}
# Idle OpenMP threads sleep instead of spinning: on a shared machine spinning burns the cores
# the other side of the comparison (or other users) need. Applies to both sides.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
LOG=$(mktemp /tmp/lorafit-train-bench.XXXXXX)

"$PY" bench/forward_baseline.py --dir "$MODEL" --make-only
grep -m1 "model name" /proc/cpuinfo | tee -a "$LOG"
# The machine load goes into the log: on a shared machine only same-run comparisons mean much.
for CK in $CKS; do
  for r in $(seq "$ROUNDS"); do
    for BF in 0 1; do
      echo "== round $r lorafit bf16=$BF checkpointing=$CK T=$T (OMP_NUM_THREADS=2), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
      OMP_NUM_THREADS=2 LORAFIT_BENCH_MODEL="$MODEL" "$BUILD/bench/bench_train_step" \
        --benchmark_filter="BM_TrainStep/$CK/$T/$BF/" --benchmark_counters_tabular=true ${LORAFIT_BENCH_ARGS:-} | tee -a "$LOG"
    done
    for BF in 0 1; do
      echo "== round $r transformers + PEFT bf16=$BF checkpointing=$CK T=$T (torch threads 2), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
      "$PY" bench/train_baseline.py --dir "$MODEL" --T "$T" --checkpointing "$CK" --bf16 "$BF" | tee -a "$LOG"
    done
  done
done
python3 bench/medians.py "$LOG" \
  '^(?P<label>BM_TrainStep/\d+/\d+/\d+)\S*\s+\S+ s\s+\S+ s\s+\S+\s+(?P<arena_MiB>[0-9.]+)\s+(?P<peak_RSS_MiB>[0-9.]+)\s+(?P<tokens_s>[0-9.]+)/s' \
  '^(?P<label>peft \S+ ckpt=\d+ T=\d+): \S+ s/step, (?P<tokens_s>[0-9.]+) tokens/s, peak RSS (?P<peak_RSS_MiB>[0-9.]+) MiB'
echo "log: $LOG"
