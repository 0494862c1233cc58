#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test that needs no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
# ctest above already replayed every fuzz seed and past crash through the targets. The live
# libFuzzer run (a second, clang ASan + UBSan build in build-fuzz) is opt-in until it has run
# end to end: LORAFIT_FUZZ_SECONDS=5 bash scripts/test.sh.
if [ "${LORAFIT_FUZZ_SECONDS:-0}" != 0 ] && command -v clang++ >/dev/null; then
  bash scripts/fuzz.sh "${LORAFIT_FUZZ_SECONDS}"
fi
