#!/usr/bin/env bash
# DoRA end to end on stories260K: `lorafit train --use_dora true` writes a PEFT-shaped DoRA
# adapter (use_dora true, a lora_magnitude_vector [O] per module), resumes bit for bit from a
# checkpoint, and the adapter loads in generate (unmerged and --merge) and `lorafit merge`; bf16
# mixed precision and a 4-bit base train and generate end to end (their numbers are checked by
# test_train_bf16 and test_train_golden); what DoRA cannot do is refused by name (cuda, a 4-bit
# base with bf16 compute, GGUF LoRA export).
# Usage: bash dora.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M=$SRC/tests/data/stories260K
make_stories "$W/stories.jsonl" 16
args=(train --model "$M" --data "$W/stories.jsonl" --dataset_format text --lora_target q_proj,v_proj,down_proj
      --lora_r 4 --lora_alpha 8 --learning_rate 3e-3 --per_device_train_batch_size 2 --max_steps 4
      --save_steps 2 --logging_steps 1 --num_samples 0 --val_size 0 --use_dora true --cache_dir "$W/cache")
"$BIN" "${args[@]}" --output_dir "$W/run" > "$W/log.txt" 2>&1 || { cat "$W/log.txt"; fail "train exited non-zero"; }
A=$W/run/final
grep -q '"use_dora": true' "$A/adapter_config.json" || fail "adapter_config.json: $(cat "$A/adapter_config.json")"
# Keys and shapes as PEFT saves them (5 layers × 3 modules; stories260K's O: q_proj and down_proj
# 64, v_proj 32 (4 kv heads of 8)).
python3 - "$A/adapter_model.safetensors" <<'PY' || fail "adapter tensors"
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
mags = {k: v for k, v in h.items() if k.endswith(".lora_magnitude_vector")}
assert len(mags) == 15, sorted(mags)
for k, v in mags.items():
    want = [32] if ".v_proj." in k else [64]
    assert k.startswith("base_model.model.model.layers.") and v["dtype"] == "F32" and v["shape"] == want, (k, v)
assert "base_model.model.model.layers.0.mlp.down_proj.lora_magnitude_vector" in mags
PY

# Resume from checkpoint-2: the same final adapter, bit for bit (m is in the optimizer state).
cp -r "$W/run" "$W/resumed"
rm -rf "$W/resumed/final" "$W/resumed/checkpoint-4"
"$BIN" "${args[@]}" --output_dir "$W/resumed" --resume_from_checkpoint latest > "$W/log2.txt" 2>&1 ||
  { cat "$W/log2.txt"; fail "resume exited non-zero"; }
cmp "$A/adapter_model.safetensors" "$W/resumed/final/adapter_model.safetensors" || fail "resumed adapter differs"

# Inference: unmerged, merged at load, and `lorafit merge` (fp32 base: the same greedy ids).
u=$("$BIN" generate --adapter "$A" --input_ids 1,403,407 --max_new_tokens 12 --json)
m=$("$BIN" generate --adapter "$A" --merge --input_ids 1,403,407 --max_new_tokens 12 --json)
[ "$u" = "$m" ] || fail "merged at load $m vs unmerged $u"
"$BIN" merge --model "$M" --adapter "$A" --output "$W/merged" > /dev/null
e=$("$BIN" generate --model "$W/merged" --input_ids 1,403,407 --max_new_tokens 12 --json)
[ "$e" = "$u" ] || fail "lorafit merge $e vs unmerged $u"
echo "dora adapter: $u"

expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1
  shift
  if "$BIN" "$@" >"$W/out" 2>"$W/err"; then fail "exit 0 for: $*"; fi
  [ "$(wc -l <"$W/err")" -eq 1 ] || fail "not one line for $*: $(cat "$W/err")"
  grep -q "^lorafit: error: .*$pattern" "$W/err" || fail "for $*: $(cat "$W/err") lacks '$pattern'"
}
expect_error "--use_dora true: DoRA runs on the CPU backend only" "${args[@]}" --output_dir "$W/y" --device cuda
expect_error "--use_dora true: DoRA on a 4-bit (QLoRA) base trains with fp32 compute only" "${args[@]}" \
  --output_dir "$W/z" --bf16 true --quantization_bit 4
expect_error "cannot be written as a GGUF LoRA" export --model "$M" --adapter "$A" --format gguf-lora --output "$W/a.gguf"
if "$BIN" generate --adapter "$A" --quantization_bit 4 --dtype bf16 --input_ids 1,403 --max_new_tokens 2 >"$W/out" 2>"$W/err"; then
  fail "exit 0 for unmerged DoRA on a 4-bit base in bf16"
fi
grep -v "^note: " "$W/err" | grep -q "^lorafit: error: $A/adapter_config.json: a DoRA adapter (use_dora: true) on a 4-bit base runs with fp32 compute only" ||
  fail "4-bit bf16 DoRA: $(cat "$W/err")"
[ ! -e "$W/y" ] && [ ! -e "$W/z" ] && [ ! -e "$W/a.gguf" ] || fail "refused runs left output"

# bf16 mixed precision (with LoRA dropout: its fp32 backward between the bf16 pieces): trains,
# writes the same PEFT layout, and generates unmerged in bf16.
"$BIN" "${args[@]}" --output_dir "$W/bf16" --bf16 true --lora_dropout 0.1 --save_steps 4 > "$W/log3.txt" 2>&1 ||
  { cat "$W/log3.txt"; fail "bf16 DoRA train exited non-zero"; }
grep -q '"use_dora": true' "$W/bf16/final/adapter_config.json" || fail "bf16 adapter_config.json"
b=$("$BIN" generate --adapter "$W/bf16/final" --dtype bf16 --input_ids 1,403,407 --max_new_tokens 4 --json) ||
  fail "bf16 DoRA generate"
echo "bf16 dora adapter: $b"

# A 4-bit (NF4) base with fp32 compute: trains, and generates unmerged on the 4-bit base.
"$BIN" "${args[@]}" --output_dir "$W/q4" --quantization_bit 4 --save_steps 4 > "$W/log4.txt" 2>&1 ||
  { cat "$W/log4.txt"; fail "4-bit DoRA train exited non-zero"; }
grep -q "QLoRA: the projection weights are .* quantized at load" "$W/log4.txt" || fail "4-bit run did not say it quantized"
q=$("$BIN" generate --adapter "$W/q4/final" --quantization_bit 4 --input_ids 1,403,407 --max_new_tokens 4 --json) ||
  fail "4-bit DoRA generate"
echo "4-bit dora adapter: $q"
echo "dora.sh: ok"
