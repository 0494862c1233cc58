#!/usr/bin/env bash
# CPU forward of a random Qwen2.5-0.5B-shaped bf16 model: lorafit vs transformers, same
# shapes (B=1, T=128), 2 threads each.
# Usage: bash bench/forward_vs_transformers.sh [BUILD_DIR] [MODEL_DIR]
#   BUILD_DIR defaults to ./build (needs bench_model_forward built), MODEL_DIR to
#   /tmp/lorafit-bench-qwen2.5-0.5b (created on first run, ~1 GB). PYTHON defaults to /opt/gv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-/tmp/lorafit-bench-qwen2.5-0.5b}
PY=${PYTHON:-/opt/gv/bin/python}
T=${T:-128}
# Sleeping (not spinning) OpenMP waits, for both sides: on a shared, oversubscribed VM
# spinning threads of one parallel region wait for a descheduled sibling and a forward
# takes 3-4x longer (measured: 20 s active vs 5.8 s passive under load 12 on 2 cores).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

"$PY" bench/forward_baseline.py --dir "$MODEL" --make-only
echo "== lorafit (OMP_NUM_THREADS=2, OMP_WAIT_POLICY=$OMP_WAIT_POLICY, BM_Forward/T:N/bf16:0 = fp32 compute from the bf16 weights, bf16:1 = bf16 activations)"
OMP_NUM_THREADS=2 LORAFIT_BENCH_MODEL="$MODEL" "$BUILD/bench/bench_model_forward" \
  --benchmark_filter="BM_ModelLoad|BM_Forward/T:$T/" --benchmark_counters_tabular=true
echo "== transformers $("$PY" -c 'import transformers; print(transformers.__version__)') (torch threads 2, OMP_WAIT_POLICY=$OMP_WAIT_POLICY)"
"$PY" bench/forward_baseline.py --dir "$MODEL" --T "$T" --reps 3
