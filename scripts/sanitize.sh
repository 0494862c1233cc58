#!/usr/bin/env bash
# Every layer under AddressSanitizer + UndefinedBehaviorSanitizer, in build-asan:
#   1. the unit tests of every module (util, tensor, formats, tokenizer, backend, lora, model,
#      generate, train, track), failing when a layer has none;
#   2. the CLI tests (ctest -L cli) with the sanitized lorafit binary: the cli layer and
#      everything it drives end to end.
# Usage: bash scripts/sanitize.sh [--unit]   (--unit: step 1 only, ~half the time)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLORAFIT_SANITIZE=ON \
      -DLORAFIT_CUDA=OFF -DLORAFIT_BENCH=OFF >/dev/null
layers=(util tensor formats tokenizer backend lora model generate train track)
targets=$(cd build-asan && ninja -t targets all | grep -oE '^test_[a-z]+_[a-z0-9_]+:' | tr -d ':' | sort -u)
for l in "${layers[@]}"; do
  grep -q "^test_${l}_" <<< "$targets" || { echo "sanitize: the $l layer has no unit test"; exit 1; }
done
ninja -C build-asan lorafit $targets
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMP_WAIT_POLICY=passive
for t in $targets; do
  echo "== $t"
  "build-asan/tests/$t" --gtest_brief=1
done
[ "${1:-}" = "--unit" ] && exit 0
echo "== CLI tests with the sanitized binary"
ctest --test-dir build-asan -L cli --output-on-failure -j "$(nproc)"
