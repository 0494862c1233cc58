#!/usr/bin/env bash
# Fuzzes the safetensors reader with libFuzzer for SECONDS (default 60):
#   bash scripts/fuzz.sh [SECONDS]
# Configures build-fuzz with clang (ASan + UBSan + libFuzzer), builds fuzz_safetensors and
# runs it on the seeds in fuzz/corpus/safetensors; new inputs go to build-fuzz/corpus.
# A crash leaves build-fuzz/crash-<hash>: reproduce with
#   build-fuzz/fuzz/fuzz_safetensors build-fuzz/crash-<hash>
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"

# libFuzzer's runtime is in Debian's libclang-rt-14-dev (clang 14 alone does not bring it).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer "$probe/p.cpp" -o "$probe/p" 2>/dev/null; then
  echo "fuzz: libFuzzer runtime missing; installing libclang-rt-14-dev"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends libclang-rt-14-dev
fi

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLORAFIT_FUZZ=ON -DLORAFIT_CUDA=OFF -DLORAFIT_BENCH=OFF >/dev/null
cmake --build build-fuzz --target fuzz_safetensors
mkdir -p build-fuzz/corpus/safetensors
build-fuzz/fuzz/fuzz_safetensors -max_total_time="$secs" -max_len=4096 -dict=fuzz/safetensors.dict \
  -print_final_stats=1 -artifact_prefix=build-fuzz/ build-fuzz/corpus/safetensors fuzz/corpus/safetensors
