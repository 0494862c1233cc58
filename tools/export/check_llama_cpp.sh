#!/usr/bin/env bash
# llama.cpp itself runs what `lorafit export` writes (not part of CI: building llama.cpp takes
# a while). Builds libllama (CPU only) from the llama-cpp-python sdist's vendored llama.cpp,
# compiles tools/export/llama_greedy.cpp against it, then for each fixture model
# (tests/fixtures/export/models) and outtype: exports with lorafit, greedy-decodes 16 tokens
# from the same ids with llama.cpp and with `lorafit generate`, and compares; the same with the
# adapter merged (--adapter) and with the LoRA GGUF loaded by llama.cpp (--lora) against
# `lorafit generate --adapter`. Prints one line per case with the smallest logit gap
# (llama.cpp's top-1 minus top-2) so a difference can be told from a near-tie.
#   bash tools/export/check_llama_cpp.sh build/lorafit [WORK_DIR]
# WORK_DIR (default /tmp/lorafit-llama-cpp) keeps the sdist and the build between runs.
set -euo pipefail
LORAFIT=$(realpath "$1")
WORK=${2:-/tmp/lorafit-llama-cpp}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VERSION=0.3.36
mkdir -p "$WORK"
cd "$WORK"
if [ ! -d "llama_cpp_python-$VERSION" ]; then
  python3 -m pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d .
  tar xzf "llama_cpp_python-$VERSION.tar.gz"
fi
LS=$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp
if [ ! -f build/src/libllama.a ]; then
  cmake -S "$LS" -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON
  nice cmake --build build -j"$(nproc)" --target llama
fi
B=$WORK/build
g++ -O2 -std=c++17 -I"$LS/include" -I"$LS/ggml/include" "$ROOT/tools/export/llama_greedy.cpp" "$B/src/libllama.a" \
  "$B/ggml/src/libggml.a" "$B/ggml/src/libggml-cpu.a" "$B/ggml/src/libggml-base.a" -fopenmp -lpthread -ldl -o llama_greedy

T=$WORK/models
rm -rf "$T" && mkdir -p "$T"
N=16
echo "llama.cpp $(cd "$LS" && git describe --always 2>/dev/null || echo "from llama-cpp-python $VERSION"), $N greedy tokens"
for name in qwen2-tok llama-spm mistral-spm; do
  cp -r "$ROOT/tests/fixtures/export/models/$name" "$T/"
  cp -r "$ROOT/tests/fixtures/export/adapters/$name" "$T/$name-adapter"
  sed -i "s|\"base_model_name_or_path\": \"[^\"]*\"|\"base_model_name_or_path\": \"$T/$name\"|" "$T/$name-adapter/adapter_config.json"
  if [ "$name" = qwen2-tok ]; then
    cp "$ROOT/tests/data/qwen-tokenizer/qwen2.5/tokenizer.json" "$ROOT/tests/data/qwen-tokenizer/qwen2.5/tokenizer_config.json" "$T/$name/"
    IDS=151644,872,198,9707,11,1246,525,498,30
  else
    IDS=1,403,407,261,500,33,421
  fi
  want=$("$LORAFIT" generate --model "$T/$name" --input_ids $IDS --max_new_tokens $N --json)
  want_a=$("$LORAFIT" generate --model "$T/$name" --adapter "$T/$name-adapter" --input_ids $IDS --max_new_tokens $N --json)
  "$LORAFIT" export --model "$T/$name" --adapter "$T/$name-adapter" --format gguf-lora --outtype f32 \
    --output "$T/$name-lora.gguf" >/dev/null 2>&1
  for t in f32 f16 bf16 q8_0; do
    "$LORAFIT" export --model "$T/$name" --outtype $t --output "$T/$name.$t.gguf" --modelfile false >/dev/null 2>&1
    "$LORAFIT" export --model "$T/$name" --adapter "$T/$name-adapter" --outtype $t --output "$T/$name.merged.$t.gguf" \
      --modelfile false >/dev/null 2>&1
    for case in base merged lora; do
      case $case in
        base) got=$(./llama_greedy "$T/$name.$t.gguf" --ids $IDS --n $N); ref=$want ;;
        merged) got=$(./llama_greedy "$T/$name.merged.$t.gguf" --ids $IDS --n $N); ref=$want_a ;;
        lora) got=$(./llama_greedy "$T/$name.$t.gguf" --lora "$T/$name-lora.gguf" --ids $IDS --n $N); ref=$want_a ;;
      esac
      python3 - "$name" "$t" "$case" "$ref" "$got" <<'PY'
import json, sys
name, t, case, ref, got = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
a, b = ref["output_ids"], got["output_ids"][:len(ref["output_ids"])]
n = next((i for i in range(len(a)) if a[i] != b[i]), None)
gap = min(got["gaps"][:len(a)])
if n is None:
    print(f"{name:12} {t:5} {case:7} identical ({len(a)} tokens)  min gap {gap:.4f}")
else:
    print(f"{name:12} {t:5} {case:7} first difference at token {n}: lorafit {a[n]} llama.cpp {b[n]}; "
          f"llama.cpp gap there {got['gaps'][n]:.4f}")
PY
    done
  done
done
