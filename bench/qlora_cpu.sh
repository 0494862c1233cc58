#!/usr/bin/env bash
# QLoRA memory and speed on the CPU: load + one forward (`lorafit score`, fp32 compute) of a
# randomly initialised Qwen2.5-0.5B-shaped bf16 model (bench/forward_baseline.py makes it),
# with the weights as stored (the baseline, same run) and quantized at load to NF4 (+ double
# quantization) and FP4. Each configuration runs in its own process under /usr/bin/time -v:
# wall time, peak RSS, and lorafit's own load/forward split from --json is not used, so the
# numbers include the load (quantizing 358 M weights for the 4-bit rows).
#
#   bash bench/qlora_cpu.sh build [MODEL_DIR] [T]
set -euo pipefail
BUILD=${1:-build}
DIR=${2:-/tmp/lorafit-bench-qwen2.5-0.5b}
T=${3:-128}
BIN="$BUILD/lorafit"
[ -x "$BIN" ] || { echo "no $BIN; build first" >&2; exit 1; }
[ -f "$DIR/model.safetensors" ] || /opt/gv/bin/python "$(dirname "$0")/forward_baseline.py" --dir "$DIR" --make-only
IDS=$(python3 -c "import random; random.seed(0); print(','.join(str(random.randrange(151936)) for _ in range($T)))")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "config | wall s | peak RSS MiB | mean NLL"
run() {
  local name=$1; shift
  local log; log=$(mktemp)
  /usr/bin/time -v "$BIN" score --model "$DIR" --input_ids "$IDS" "$@" >"$log.out" 2>"$log"
  local wall rss nll
  wall=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$log" | awk '{printf "%.0f", $NF/1024}')
  nll=$(grep -o 'mean NLL [0-9.]*' "$log.out" | awk '{print $3}')
  echo "$name | $wall | $rss | $nll"
  rm -f "$log" "$log.out"
}
run "bf16 weights (baseline)"
run "nf4 + double quant" --quantization_bit 4 --quantization_type nf4 --double_quantization true
run "nf4" --quantization_bit 4 --quantization_type nf4 --double_quantization false
run "fp4 + double quant" --quantization_bit 4 --quantization_type fp4
