#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test that needs no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
# Every libFuzzer target for a few seconds under ASan + UBSan (a second, clang build in
# build-fuzz; ctest above already replayed every seed and past crash). LORAFIT_FUZZ_SECONDS=0
# skips it.
if [ "${LORAFIT_FUZZ_SECONDS:-5}" != 0 ] && command -v clang++ >/dev/null; then
  bash scripts/fuzz.sh "${LORAFIT_FUZZ_SECONDS:-5}"
fi
