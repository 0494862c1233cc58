#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test that needs no GPU:
#   1. ctest (unit, CLI, browser tests; every fuzz seed and past crash replayed);
#   2. the live fuzz run: each libFuzzer target for LORAFIT_FUZZ_SECONDS (default 5) under
#      ASan + UBSan (scripts/fuzz.sh, a second, clang build in build-fuzz); 0 skips it;
#   3. the README's top commands verbatim on a fresh clone (tests/slow/readme_commands.sh: a
#      full build, so not in ctest); LORAFIT_README_CHECK=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
if [ "${LORAFIT_FUZZ_SECONDS:-5}" != 0 ]; then
  bash scripts/fuzz.sh "${LORAFIT_FUZZ_SECONDS:-5}"
fi
if [ "${LORAFIT_README_CHECK:-1}" != 0 ]; then
  bash tests/slow/readme_commands.sh .
fi
