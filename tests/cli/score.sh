#!/usr/bin/env bash
# lorafit score end to end: the exact JSON form, one sentence's mean NLL against the
# transformers fixture (tests/fixtures/forward/stories260K_nll.json, within 1e-4 as in
# test_model_forward), and bad inputs (one-line error, non-zero exit).
# Usage: bash score.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
LORAFIT=$1
ROOT=$2
MODEL=$ROOT/tests/data/stories260K
FIX=$ROOT/tests/fixtures/forward/stories260K_nll.json
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Exact form: {"mean_nll": x, "token_nll": [a, b, c]} with n − 1 = 3 entries.
out=$("$LORAFIT" score --model "$MODEL" --input_ids 1,410,469,347 --json)
num='-?[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?'
echo "$out" | grep -Eqx "\{\"mean_nll\": $num, \"token_nll\": \[$num, $num, $num\]\}" || fail "JSON form: $out"

# 2. The first fixture sentence: ids and mean_nll read with awk from the pretty-printed JSON.
ids=$(awk '/"ids": \[/ {on=1; next} on && /\]/ {exit} on {gsub(/[ ,]/, ""); printf "%s%s", sep, $0; sep=","}' "$FIX")
ref=$(awk -F': ' '/"mean_nll"/ {gsub(/[ ,]/, "", $2); print $2; exit}' "$FIX")
[ -n "$ids" ] && [ -n "$ref" ] || fail "could not read the fixture $FIX"
out=$("$LORAFIT" score --model "$MODEL" --input_ids "$ids" --json)
got=$(echo "$out" | sed -E 's/^\{"mean_nll": ([^,]+),.*/\1/')
awk -v a="$got" -v b="$ref" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4) }' \
  || fail "mean_nll $got vs fixture $ref"

# The same sentence as --text through the folder's tokenizer (BOS from tokenizer_config.json).
text=$(sed -nE '0,/"text": /s/^ *"text": "(.*)",$/\1/p' "$FIX")
[ -n "$text" ] || fail "could not read the text from $FIX"
out=$("$LORAFIT" score --model "$MODEL" --text "$text" --json)
got=$(echo "$out" | sed -E 's/^\{"mean_nll": ([^,]+),.*/\1/')
awk -v a="$got" -v b="$ref" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4) }' \
  || fail "--text mean_nll $got vs fixture $ref"

# 3. The readable table names the model and ends with the mean.
"$LORAFIT" score --model "$MODEL" --input_ids 1,410,469,347 | grep -q "^mean NLL 5.0087" || fail "table output"

# 4. Bad inputs: exit non-zero with one line "lorafit: error: ..." naming the problem.
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1
  shift
  if "$LORAFIT" score "$@" >"$TMP/out" 2>"$TMP/err"; then fail "exit 0 for: $*"; fi
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "not one line for $*: $(cat "$TMP/err")"
  grep -q "^lorafit: error: .*$pattern" "$TMP/err" || fail "for $*: $(cat "$TMP/err") lacks '$pattern'"
}
expect_error "does not exist" --model "$TMP/nope" --input_ids 1,2
mkdir "$TMP/empty"
expect_error "no config.json" --model "$TMP/empty" --input_ids 1,2
mkdir "$TMP/gpt2"
sed 's/"qwen2"/"gpt2"/' "$MODEL/config.json" >"$TMP/gpt2/config.json"
cp "$MODEL/model.safetensors" "$TMP/gpt2/"
expect_error 'model_type "gpt2" is not supported' --model "$TMP/gpt2" --input_ids 1,2
mkdir "$TMP/wide"
sed 's/"intermediate_size": 172/"intermediate_size": 180/' "$MODEL/config.json" >"$TMP/wide/config.json"
cp "$MODEL/model.safetensors" "$TMP/wide/"
expect_error 'tensor "model.layers.0.mlp.gate_proj.weight" has shape \[172, 64\], but config.json implies \[180, 64\]' \
  --model "$TMP/wide" --input_ids 1,2
expect_error "token id 512 at position 1 is outside the vocabulary" --model "$MODEL" --input_ids 1,512,3
expect_error "token id -1 at position 0" --model "$MODEL" --input_ids -1,5
expect_error "needs at least 2" --model "$MODEL" --input_ids 7
expect_error 'item 2 ("x") is not an integer' --model "$MODEL" --input_ids 1,x
expect_error "exactly one of --input_ids" --model "$MODEL"
expect_error "exactly one of --input_ids" --model "$MODEL" --input_ids 1,2 --text hi
echo "score.sh: ok"
