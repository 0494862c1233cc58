#!/usr/bin/env bash
# Messages and flags (issue 16 item 6): one-line errors that name the command's own flags,
# suggestions only when close, kebab-case accepted as an alias of every snake_case flag,
# merge --output_dir, unknown commands with the nearest name, braces printed once, and a
# warning for lora_target names the model lacks.
# Usage: bash messages.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MODEL=$SRC/tests/data/stories260K

# expect_error WANT ARGS...: non-zero exit and exactly one stderr line equal to WANT.
expect_error() {
  local want=$1; shift
  if "$BIN" "$@" > "$W/out" 2> "$W/err"; then fail "exit 0 for: $*"; fi
  [ "$(wc -l < "$W/err")" = 1 ] || { cat "$W/err"; fail "not one line for: $*"; }
  [ "$(cat "$W/err")" = "$want" ] || fail "for: $*
  got:  $(cat "$W/err")
  want: $want"
}

expect_error 'lorafit: error: unknown command "trian"; did you mean train? (`lorafit --help` lists the commands)' trian
expect_error 'lorafit: error: unknown command "frobnicate" (`lorafit --help` lists the commands)' frobnicate
# --lr: the initials of learning_rate (and lora_r), never the unrelated --data.
expect_error 'lorafit: error: --lr: unknown setting; did you mean --learning_rate or --lora_r? (`lorafit train --help` lists every key)' \
  train --model "$MODEL" --lr 1e-4
# train has no --tokenizer: no made-up suggestion, and no message tells train users to pass it.
expect_error 'lorafit: error: --tokenizer: unknown setting (`lorafit train --help` lists every key)' \
  train --model "$MODEL" --tokenizer "$MODEL"
expect_error 'lorafit: error: --dashbord: unknown setting; did you mean --dashboard? (`lorafit train --help` lists every key)' \
  train --model "$MODEL" --dashbord
expect_error 'lorafit: error: generate: unknown flag --max_tokens; did you mean --max_new_tokens? (`lorafit generate --help` lists its flags)' \
  generate --model "$MODEL" --input_ids 1 --max_tokens 3
expect_error 'lorafit: error: chat: unknown flag --lr (`lorafit chat --help` lists its flags)' chat --model "$MODEL" --lr 3
expect_error 'lorafit: error: tokenize: unknown flag --tokeniser; did you mean --tokenizer? (`lorafit tokenize --help` lists its flags)' \
  tokenize --tokeniser "$MODEL" --text hi
expect_error 'lorafit: error: --dashboard_port: 70000 is out of range; use 0..65535' \
  train --model "$MODEL" --dashboard --dashboard_port 70000

# Architectures of the Qwen3 generation that lorafit does not implement: named, with the list.
for t in qwen3_moe qwen3_5 qwen3_next; do
  mkdir -p "$W/$t"
  sed "s/\"model_type\": \"qwen3\"/\"model_type\": \"$t\"/" "$SRC/tests/fixtures/models/qwen3-gqa-tied-f32/config.json" \
    > "$W/$t/config.json"
done
expect_error "lorafit: error: $W/qwen3_moe/config.json: model_type \"qwen3_moe\" is a mixture-of-experts model (Qwen MoE), which lorafit does not support yet; supported model types: qwen2, qwen3, llama, mistral" \
  generate --model "$W/qwen3_moe" --input_ids 1,2
expect_error "lorafit: error: $W/qwen3_5/config.json: model_type \"qwen3_5\" is Qwen3.5 (hybrid linear attention: Gated DeltaNet layers between attention layers), which lorafit does not support yet; supported model types: qwen2, qwen3, llama, mistral" \
  chat --model "$W/qwen3_5"
expect_error "lorafit: error: $W/qwen3_next/config.json: model_type \"qwen3_next\" is Qwen3-Next (hybrid linear attention with mixture of experts), which lorafit does not support yet; supported model types: qwen2, qwen3, llama, mistral" \
  train --model "$W/qwen3_next" --data "$W/none.jsonl" --output_dir "$W/run-next"

# kebab-case is an alias of every flag: the same ids as the snake_case spelling.
a=$("$BIN" generate --model "$MODEL" --input_ids 1,403,407 --max_new_tokens 5 --do_sample false --json)
b=$("$BIN" generate --model-name-or-path "$MODEL" --input-ids 1,403,407 --max-new-tokens 5 --do-sample false --json)
[ "$a" = "$b" ] || fail "kebab-case generate: '$b' vs '$a'"
case "$a" in '{"output_ids": ['*) ;; *) fail "generate --json printed '$a'" ;; esac
t=$("$BIN" tokenize --tokenizer "$MODEL" --text "Once upon a time" --json --add_special_tokens)
u=$("$BIN" tokenize --tokenizer "$MODEL" --text "Once upon a time" --json --add-special-tokens)
[ "$t" = "$u" ] || fail "tokenize --add_special_tokens '$t' vs --add-special-tokens '$u'"

# merge takes --output_dir (HF's name) as well as --output.
"$BIN" merge --adapter "$SRC/tests/fixtures/adapter/stories260K-qv-rslora" --output_dir "$W/merged" > "$W/log"
[ -f "$W/merged/model.safetensors" ] || fail "merge --output_dir wrote nothing: $(cat "$W/log")"
expect_error "lorafit: error: --output_dir $W/merged already exists; choose a new folder name" \
  merge --adapter "$SRC/tests/fixtures/adapter/stories260K-qv-rslora" --output-dir "$W/merged"

# A record of no known form: the braces of the message print once.
echo '{"question": "q", "answer": "a"}' > "$W/bad.jsonl"
if "$BIN" train --model "$MODEL" --data "$W/bad.jsonl" --output_dir "$W/run" --cache_dir "$W/cache" \
     --max_steps 1 > "$W/out" 2> "$W/err"; then fail "train on a bad dataset exited 0"; fi
grep -qF 'expected {input, output}, {instruction, input, output}, {messages}, {conversations} or {text}' "$W/err" ||
  fail "dataset error: $(cat "$W/err")"
if grep -qF '{{' "$W/err"; then fail "doubled braces: $(cat "$W/err")"; fi

# lora_target names the model lacks are warned about with the module names it has.
make_stories "$W/stories.jsonl" 6
"$BIN" train --model "$MODEL" --data "$W/stories.jsonl" --output_dir "$W/run2" --cache_dir "$W/cache" \
  --dataset_format text --max_steps 1 --lora_r 2 --lora_target q_proj,vproj --eval_range 0:1 --num_samples 0 \
  --quiet > "$W/out" 2> "$W/err" || { cat "$W/err"; fail "train with one unknown lora_target failed"; }
grep -qxF 'lorafit: warning: lora_target "vproj" matches no module of the model (did you mean v_proj?); its Linear modules are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj (in every model.layers.N; lm_head is never adapted)' "$W/err" ||
  fail "lora_target warning: $(cat "$W/err")"
echo PASS
