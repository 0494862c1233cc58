#!/usr/bin/env bash
# The GPU suite, for a machine with an NVIDIA GPU (compute capability 8.0+), in one call of
# under 10 minutes: configure + build with CUDA (Release), the whole ctest suite (the CUDA
# columns of the backend parity tests now run instead of skipping), then the benchmarks —
# lorafit vs transformers + PEFT LoRA training (tokens/s, MFU, memory) on a random-init
# Qwen2.5-7B-shaped model at T = 384 and 1024, batch 2, checkpointing on/off, and batch-1
# decode vs the bandwidth bound — printed as one table at the end.
#   bash bench/gpu_suite.sh
# Environment: BUILD (build dir, default build-gpu), LAYERS (decoder layers of the 7B-shaped
# model, default 4; 28 is the full model but does not fit the 10-minute budget with the
# baseline), PY (python with torch/transformers/peft, default python3), CUDA_ARCH (default
# native), PEAK_TFLOPS (default 989: H100/H200 SXM dense bf16), BW_GBS (default: from the
# GPU name, H100 3350 / H200 4800), SKIP_TESTS=1, SKIP_BASELINE=1.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-gpu}
LAYERS=${LAYERS:-4}
PY=${PY:-python3}
CUDA_ARCH=${CUDA_ARCH:-native}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
JOBS=$(nproc)
TABLE=$(mktemp)
start=$(date +%s)
say() { echo "== [$(( $(date +%s) - start ))s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "no nvidia-smi / GPU"; exit 1; }
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$GPU_NAME" in
  *H200*) BW_GBS=${BW_GBS:-4800} ;;
  *H100*) BW_GBS=${BW_GBS:-3350} ;;
  *A100*) BW_GBS=${BW_GBS:-2039} ;;
  *) BW_GBS=${BW_GBS:-1000} ;;
esac

say "configure + build (CUDA, Release, arch $CUDA_ARCH, -j$JOBS)"
GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DLORAFIT_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DCMAKE_CUDA_COMPILER="${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}" \
  > "$BUILD.configure.log" 2>&1 || { tail -30 "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" > "$BUILD.build.log" 2>&1 || { grep -m20 -B2 -A10 "error" "$BUILD.build.log"; exit 1; }

status=0
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  say "backend parity tests (CUDA columns)"
  for t in test_backend_ops_forward test_backend_ops_backward test_backend_cuda_bf16; do
    "$BUILD/tests/$t" --gtest_brief=1 2>&1 | tail -25 || status=1
  done
  say "ctest (whole suite)"
  (cd "$BUILD" && timeout 240 ctest -j "$JOBS" --timeout 200 --output-on-failure 2>&1 | tail -40) || status=1
fi

MODEL=/tmp/lorafit-gpu-qwen2.5-7b-L$LAYERS
if ! "$PY" -c "import torch, transformers, peft" 2>/dev/null; then
  echo "baseline and model folder need $PY with torch, transformers, peft: benchmarks skipped"
  exit $status
fi
say "random Qwen2.5-7B-shaped model, $LAYERS layers -> $MODEL"
"$PY" "$ROOT/bench/gpu_baseline.py" --make-model "$MODEL" --layers "$LAYERS" --device cuda || exit 1

for T in 384 1024; do
  for CK in 1 0; do
    say "train T=$T ckpt=$CK"
    timeout 120 "$BUILD/bench/bench_train_cuda" --model "$MODEL" --T "$T" --B 2 --ckpt "$CK" --iters 3 \
      --peak-tflops "$PEAK_TFLOPS" 2>&1 | tee -a "$TABLE"
    if [ "${SKIP_BASELINE:-0}" != 1 ]; then
      timeout 120 "$PY" "$ROOT/bench/gpu_baseline.py" --train --layers "$LAYERS" --T "$T" --B 2 --ckpt "$CK" \
        --iters 3 --peak-tflops "$PEAK_TFLOPS" 2>&1 | grep -E "^peft|Error|error" | tee -a "$TABLE"
    fi
  done
done
say "decode, batch 1"
timeout 60 "$BUILD/bench/bench_generate_cuda" --model "$MODEL" --prompt 128 --new 64 --bw-gbs "$BW_GBS" 2>&1 | tee -a "$TABLE"

echo
echo "== $GPU_NAME, Qwen2.5-7B shapes with $LAYERS layers, LoRA r 64 all 7 projections, batch 2 =="
cat "$TABLE"
rm -f "$TABLE"
say "done"
exit $status
