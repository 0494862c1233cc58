#!/usr/bin/env bash
# ctest wrapper for the headless-Chromium tests: exits 77 (ctest SKIP_RETURN_CODE) with a
# visible reason when chromium or python3 is missing; scripts/setup.sh installs chromium.
#   bash run.sh <test.py> <lorafit binary> <source root> <output dir for screenshots>
set -euo pipefail
if ! command -v python3 >/dev/null; then
  echo "SKIP: python3 not found (the browser test needs only its standard library)"
  exit 77
fi
for c in chromium chromium-browser google-chrome; do
  if command -v "$c" >/dev/null; then
    exec python3 "$@"
  fi
done
echo "SKIP: chromium not found; run scripts/setup.sh (apt-get install chromium) to enable the browser test"
exit 77
