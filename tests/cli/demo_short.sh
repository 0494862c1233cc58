#!/usr/bin/env bash
# `lorafit demo` in its shortened CI form: creates the tiny random Qwen2 demo model in a fresh
# cache folder (a real HF folder), trains 2 steps of the legal recipe on a slice of the bundled
# DISC data, prints before/after answers, the loss, the adapter path and the chat command.
# Usage: bash demo_short.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
XDG_CACHE_HOME="$W/cache" "$BIN" demo --max_steps 2 --train_range 3:40 --max_new_tokens 4 --logging_steps 1 \
  > out.txt 2>&1 || { cat out.txt; fail "demo exited non-zero"; }
cat out.txt
M=$W/cache/lorafit/demo-model
for f in config.json model.safetensors tokenizer.json tokenizer_config.json generation_config.json; do
  [ -f "$M/$f" ] || fail "demo model lacks $f"
done
grep -q '"model_type": "qwen2"' "$M/config.json" || fail "demo model config"
grep -q 'RANDOM weights' out.txt || fail "the demo must say the model is random"
grep -q 'created the demo model' out.txt || fail "first use must create the model"
grep -q '^Q1: ' out.txt && grep -q '^  before: ' out.txt && grep -q '^  after: ' out.txt || fail "before/after answers"
grep -Eq '^loss: [0-9.]+ at step 1 -> [0-9.]+ at step 2; held-out eval loss' out.txt || fail "loss line"
grep -q "^adapter: $W/lorafit-demo/final" out.txt || fail "adapter path"
grep -q "^try it:  lorafit chat --model $M --adapter $W/lorafit-demo/final" out.txt || fail "chat command"
[ -f lorafit-demo/final/adapter_model.safetensors ] || fail "no adapter written"
# Deterministic creation: the same seed gives the same weights.
sum1=$(cksum < "$M/model.safetensors")
rm -rf "$M" && XDG_CACHE_HOME="$W/cache" "$BIN" demo --max_steps 1 --train_range 3:5 --num_samples 0 > /dev/null 2>&1 ||
  fail "second demo"
[ "$(cksum < "$M/model.safetensors")" = "$sum1" ] || fail "demo model is not deterministic"
echo PASS
