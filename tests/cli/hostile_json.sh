#!/usr/bin/env bash
# Deeply nested JSON in every file kind lorafit reads (issue 19: these crashed with stack
# overflows), generated here 100,000 levels deep, through the commands that read them: each
# ends with lorafit's one-line depth message naming the file (and the field), exit code 1,
# never a crash. Files: config.json, generation_config.json, tokenizer.json,
# tokenizer_config.json, a safetensors header, adapter_config.json, a dataset's JSONL record
# and JSON array, a chat's messages file; and the crafted dataset that hung (too many keys).
# Usage: bash hostile_json.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M="$SRC/tests/data/stories260K"
limit="JSON nested deeper than 127 levels"
# deep KIND: 100,000 nested arrays (KIND=array) or objects {"a": ...} (KIND=object).
deep() { python3 -c 'import sys
n = 100000
if sys.argv[1] == "array": sys.stdout.write("[" * n + "1" + "]" * n)
else: sys.stdout.write("{\"a\":" * n + "1" + "}" * n)' "$1"; }

# expect NAME WANT CMD...: CMD exits 1 with exactly one line, "lorafit: error: " + WANT.
expect() {
  local name=$1 want=$2 rc=0
  shift 2
  "$@" > "$W/$name.out" 2>&1 || rc=$?
  [ "$rc" = 1 ] || { cat "$W/$name.out"; fail "$name: exit status $rc, expected 1"; }
  [ "$(wc -l < "$W/$name.out")" = 1 ] || { cat "$W/$name.out"; fail "$name: not one line"; }
  local got
  got=$(cat "$W/$name.out")
  [ "$got" = "lorafit: error: $want" ] || fail "$name: got '$got', expected 'lorafit: error: $want'"
  echo "ok: $name"
}
# model WITH FILE: a copy of stories260K whose FILE is replaced by stdin.
model() {
  local d="$W/m_$1"
  rm -rf "$d"
  cp -r "$M" "$d"
  cat > "$d/$1"
  echo "$d"
}

g=(generate --prompt hi --raw --max_new_tokens 1)
d=$(printf '{"x": %s}' "$(deep array)" | model config.json)
expect config "$d/config.json: $limit at field \`x\` (lorafit's limit, as serde_json's); flatten the data" \
  "$BIN" "${g[@]}" --model "$d"
d=$(deep array | model generation_config.json)
expect generation_config "$d/generation_config.json: $limit (lorafit's limit, as serde_json's); flatten the data" \
  "$BIN" "${g[@]}" --model "$d"
a127=$(python3 -c 'print(".".join(["a"] * 127))')  # the field path at the 128th level
d=$(deep object | model tokenizer.json)
expect tokenizer "$d/tokenizer.json: $limit at field \`$a127\` (lorafit's limit, as serde_json's); flatten the data" \
  "$BIN" tokenize --tokenizer "$d" --text hi
d=$(printf '{"chat_template": "x", "eos_token": %s}' "$(deep array)" | model tokenizer_config.json)
expect tokenizer_config "$d/tokenizer_config.json: $limit at field \`eos_token\` (lorafit's limit, as serde_json's); flatten the data" \
  "$BIN" "${g[@]}" --model "$d"
# a safetensors file: u64 header length, then the header
d=$(python3 -c 'import struct, sys
h = ("{\"__metadata__\": " + "[" * 100000 + "]" * 100000 + "}").encode()
sys.stdout.buffer.write(struct.pack("<Q", len(h)) + h)' | model model.safetensors)
expect safetensors "$d/model.safetensors (header): $limit at field \`__metadata__\` (lorafit's limit, as serde_json's); flatten the data" \
  "$BIN" "${g[@]}" --model "$d"
# an adapter folder
mkdir -p "$W/adapter"
cp "$SRC/tests/fixtures/export/adapters/qwen2-tok/adapter_model.safetensors" "$W/adapter/"
printf '{"peft_type": "LORA", "target_modules": %s}' "$(deep array)" > "$W/adapter/adapter_config.json"
expect adapter "$W/adapter/adapter_config.json: $limit at field \`target_modules\` (lorafit's limit, as serde_json's); flatten the data" \
  "$BIN" "${g[@]}" --model "$M" --adapter "$W/adapter"
# datasets: a JSONL record (line 2) and a JSON array
printf '{"text": "a"}\n{"text": %s}\n' "$(deep array)" > "$W/d.jsonl"
t=(train --model "$M" --dataset_format text --max_steps 1 --cache_dir "$W/cache")
expect dataset_jsonl "$W/d.jsonl:2: record is $limit at field \`text\` (lorafit's limit, as serde_json's); flatten the data; fix it or set on_bad_record: skip" \
  "$BIN" "${t[@]}" --data "$W/d.jsonl" --output_dir "$W/run1"
printf '[{"text": "a"}, {"text": %s}]' "$(deep object)" > "$W/d.json"
a125=$(python3 -c 'print(".a" * 125)')  # the array and the record are levels 1 and 2
expect dataset_json "$W/d.json: $limit at field \`text$a125\` (lorafit's limit, as serde_json's); flatten the data; expected an array of records or one record per line" \
  "$BIN" "${t[@]}" --data "$W/d.json" --output_dir "$W/run2"
# the crafted dataset that hung (ordered objects insert in O(n): 200,000 keys took hours), under a
# timeout: refused at the key limit in well under a second
python3 -c 'import sys; sys.stdout.write("{" + ",".join("\"k%d\": 0" % i for i in range(200000)) + "}\n")' > "$W/keys.jsonl"
expect dataset_keys "$W/keys.jsonl:1: record is an object with more than 10000 keys; lorafit reads at most that many here; fix it or set on_bad_record: skip" \
  timeout 60 "$BIN" "${t[@]}" --data "$W/keys.jsonl" --output_dir "$W/run3"
printf '[{"role": "user", "content": %s}]' "$(deep array)" > "$W/messages.json"
expect messages "$W/messages.json: $limit at field \`content\` (lorafit's limit, as serde_json's); flatten the data" \
  "$BIN" tokenize --tokenizer "$SRC/tests/data/qwen-tokenizer/qwen2.5" --chat "$W/messages.json"
echo PASS
