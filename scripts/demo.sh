#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/lorafit demo
