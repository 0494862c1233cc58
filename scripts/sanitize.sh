#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan and
# runs the subset that exercises parsing and raw memory: formats, tokenizer, tensor, backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLORAFIT_SANITIZE=ON \
      -DLORAFIT_CUDA=OFF -DLORAFIT_BENCH=OFF >/dev/null
targets=$(cd build-asan && ninja -t targets all | grep -oE '^test_(formats|tokenizer|tensor|backend)_[a-z_]+:' | tr -d ':' | sort -u)
ninja -C build-asan $targets
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in $targets; do
  echo "== $t"
  "build-asan/tests/$t" --gtest_brief=1
done
