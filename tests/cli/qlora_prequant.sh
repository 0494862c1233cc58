#!/usr/bin/env bash
# A pre-quantized bitsandbytes 4-bit folder (tests/fixtures/models/stories260K-bnb-nf4, saved by
# transformers 4.57.6 + bitsandbytes 0.50.2: tools/golden/make_prequant_fixtures.py) used with no
# --quantization_bit: train (LoRA on the stored 4-bit weights) lowers the loss and records the
# 4-bit base; generate and score run on it with and without the adapter; --quantization_bit 4 on
# it is noted and ignored. Merging: into the 4-bit folder is refused by name; into the fp32
# stories260K base it works with the exact QLoRA warning, also for a PEFT-written adapter whose
# base_model_name_or_path is the 4-bit folder; a plain adapter gets no warning.
# Usage: bash qlora_prequant.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1
SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
Q=$SRC/tests/fixtures/models/stories260K-bnb-nf4
BASE=$SRC/tests/data/stories260K
make_stories "$W/stories.jsonl" 40

# Runs on the 4-bit folder as it is.
g=$("$BIN" generate --model "$Q" --input_ids 1,403,407 --max_new_tokens 8 --json)
echo "$g" | grep -q '"output_ids"' || fail "generate on the 4-bit folder: $g"
"$BIN" score --model "$Q" --input_ids 1,403,407,261 --json >"$W/score.json" || fail "score on the 4-bit folder"

# --quantization_bit 4 on a 4-bit checkpoint: one note on stderr, the same tokens.
g4=$("$BIN" generate --model "$Q" --input_ids 1,403,407 --max_new_tokens 8 --json --quantization_bit 4 2>"$W/note")
[ "$g4" = "$g" ] || fail "--quantization_bit 4 changed the output: $g4 vs $g"
[ "$(cat "$W/note")" = "note: --quantization_bit 4 is ignored: config.json's quantization_config says the checkpoint is already bitsandbytes 4-bit (nf4, double quantization), and its stored 4-bit weights are used as they are" ] ||
  fail "note: $(cat "$W/note")"

"$BIN" train --model "$Q" --data "$W/stories.jsonl" --output_dir "$W/run" --dataset_format text \
  --lora_target all-linear --lora_r 8 --lora_alpha 16 --learning_rate 3e-3 --per_device_train_batch_size 4 \
  --gradient_accumulation_steps 2 --max_steps 6 --logging_steps 2 --save_steps 100 --cache_dir "$W/cache" \
  >"$W/log.txt" 2>&1 || { cat "$W/log.txt"; fail "train on the 4-bit folder"; }
grep -q "^QLoRA: the projection weights are 4-bit nf4 with double quantization as stored in the bitsandbytes checkpoint" "$W/log.txt" ||
  fail "train log: $(cat "$W/log.txt")"
first=$(grep -m1 -oE '^step 2/6 \| loss [0-9.]+' "$W/log.txt" | awk '{print $NF}')
last=$(grep -oE '^step 6/6 \| loss [0-9.]+' "$W/log.txt" | awk '{print $NF}')
awk -v a="$last" -v b="$first" 'BEGIN { exit !(a < 0.8 * b) }' || fail "loss did not fall: $first -> $last"
tr -d ' \n' <"$W/run/final/lorafit_base_model.json" |
  grep -q '"quantization":{"bits":4,"quant_type":"nf4","double_quant":true,"source":"bitsandbytescheckpoint"}' ||
  fail "lorafit_base_model.json: $(cat "$W/run/final/lorafit_base_model.json")"
"$BIN" generate --adapter "$W/run/final" --input_ids 1,403,407 --max_new_tokens 8 --json >/dev/null ||
  fail "generate + adapter"
"$BIN" score --model "$Q" --adapter "$W/run/final" --input_ids 1,403,407,261 --json >"$W/score_a.json" ||
  fail "score + adapter"
! cmp -s "$W/score.json" "$W/score_a.json" || fail "the adapter changed no score: $(cat "$W/score.json")"

# Merge into the 4-bit folder (the adapter's recorded base): refused by name, nothing written.
if "$BIN" merge --adapter "$W/run/final" --output "$W/m4" >"$W/out" 2>"$W/err"; then fail "merge into 4-bit: exit 0"; fi
[ "$(cat "$W/err")" = "lorafit: error: $Q/config.json: the model is a bitsandbytes 4-bit checkpoint (quantization_config: load_in_4bit, nf4, double quantization); lorafit merge writes W + s·B·A in the base model's 16/32-bit dtype and needs the unquantized weights: pass the bf16 base folder with --model (PEFT users merge a QLoRA adapter into the bf16 model too, not into the 4-bit one)" ] ||
  fail "refusal: $(cat "$W/err")"
[ ! -e "$W/m4" ] && [ ! -e "$W/m4.tmp" ] || fail "refused merge left a folder"

# Merge into the unquantized base: the warning, then a folder that loads.
"$BIN" merge --adapter "$W/run/final" --model "$BASE" --output "$W/m" >"$W/out" 2>"$W/err" || fail "merge: $(cat "$W/err")"
[ "$(cat "$W/err")" = "warning: $W/run/final was trained on 4-bit base weights (nf4 with double quantization, a bitsandbytes checkpoint; recorded in $W/run/final/lorafit_base_model.json). Merged into the unquantized weights of $BASE, it computes slightly different outputs than during training, where every projection was the dequantized 4-bit weight: the merged model has W + s·B·A on the unrounded W. Check the merged model (lorafit eval), or keep the adapter unmerged on the 4-bit base" ] ||
  fail "warning: $(cat "$W/err")"
"$BIN" generate --model "$W/m" --input_ids 1,403,407 --max_new_tokens 8 --json >/dev/null || fail "merged folder"

# A PEFT-written adapter (no lorafit_base_model.json) whose base_model_name_or_path is the 4-bit folder.
mkdir "$W/peft"
cp "$W/run/final/adapter_config.json" "$W/run/final/adapter_model.safetensors" "$W/peft/"
"$BIN" merge --adapter "$W/peft" --model "$BASE" --output "$W/mp" >"$W/out" 2>"$W/err" || fail "merge peft: $(cat "$W/err")"
[ "$(cat "$W/err")" = "warning: $W/peft was trained on 4-bit base weights (nf4 with double quantization: its base_model_name_or_path $Q is a bitsandbytes 4-bit checkpoint). Merged into the unquantized weights of $BASE, it computes slightly different outputs than during training, where every projection was the dequantized 4-bit weight: the merged model has W + s·B·A on the unrounded W. Check the merged model (lorafit eval), or keep the adapter unmerged on the 4-bit base" ] ||
  fail "peft warning: $(cat "$W/err")"

# A plain adapter: no warning.
"$BIN" merge --adapter "$SRC/tests/fixtures/adapter/stories260K-qv-rslora" --model "$BASE" --output "$W/mn" \
  >"$W/out" 2>"$W/err" || fail "plain merge"
[ ! -s "$W/err" ] || fail "plain merge warned: $(cat "$W/err")"
echo "qlora_prequant.sh: ok"
