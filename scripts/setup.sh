#!/usr/bin/env bash
# Installs the Debian 12 packages lorafit needs to build and test. Idempotent: when every
# package is already installed it returns at once without touching apt.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config ccache
      nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libpcre2-dev libutf8proc-dev
      libdnnl-dev libhwy-dev libcpp-httplib-dev libfmt-dev libgtest-dev libbenchmark-dev
      libopenblas-openmp-dev  # only for bench/bench_backend_gemm's library comparison
      libedit-dev  # chat line editing and history (BSD licence, unlike GNU readline's GPL)
      chromium     # the dashboard's headless browser test (tests/browser/)
      tmux         # the chat line-editing test drives a real terminal (tests/cli/chat_tty.sh)
      clang libclang-rt-14-dev)  # the libFuzzer targets (scripts/fuzz.sh; test.sh runs them briefly)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
