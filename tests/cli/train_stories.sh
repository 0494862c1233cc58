#!/usr/bin/env bash
# lorafit train end to end on stories260K (real weights, real text): LoRA training lowers the
# held-out NLL measured by `lorafit score --adapter`; the run folder, checkpoints and adapter
# folder hold what docs/DESIGN.md §7 / docs/SPEC.md say; bad input gets clear errors.
# Usage: bash train_stories.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M=$SRC/tests/data/stories260K
make_stories "$W/stories.jsonl" 40
HELD='Sue had a big box. One day Sue went to the yard with the big box. Tom saw the big box and said, "Can I play with your big box?" Sue said yes. They played with the big box in the yard all day.'

nll() { "$BIN" score --model "$M" --text "$HELD" --json "$@" | sed -E 's/.*"mean_nll": ([0-9.eE+-]+).*/\1/'; }
before=$(nll)

"$BIN" train --model "$M" --data "$W/stories.jsonl" --output_dir "$W/run" --dataset_format text \
  --lora_target all-linear --lora_r 8 --lora_alpha 16 --learning_rate 3e-3 --per_device_train_batch_size 4 \
  --gradient_accumulation_steps 2 --num_train_epochs 2 --logging_steps 2 --save_steps 4 --save_total_limit 2 \
  --eval_range 0:4 --num_samples 2 --max_new_tokens 8 --cache_dir "$W/cache" > "$W/log.txt" 2>&1 ||
  { cat "$W/log.txt"; fail "train exited non-zero"; }
cat "$W/log.txt"
after=$(nll --adapter "$W/run/final")
echo "held-out mean NLL: before $before, after $after"
# The adapter must lower the held-out NLL by a clear margin (observed 1.45 -> ~0.3); 0.7 of
# the base value is far outside run-to-run noise (runs are deterministic anyway).
awk -v a="$after" -v b="$before" 'BEGIN { exit !(a < 0.7 * b) }' || fail "NLL did not drop: $before -> $after"

# Run folder (docs/DESIGN.md §7).
for f in config.yaml config.json env.json status.json metrics.jsonl samples.jsonl system.jsonl train.log final/adapter_config.json final/adapter_model.safetensors \
         final/tokenizer.json final/tokenizer_config.json final/lorafit_base_model.json; do
  [ -f "$W/run/$f" ] || fail "missing $f"
done
grep -q '"loss"' "$W/run/metrics.jsonl" || fail "no loss lines in metrics.jsonl"
for k in grad_norm learning_rate epoch tokens_per_s samples_per_s elapsed_s eta_s; do
  grep -q "\"$k\"" "$W/run/metrics.jsonl" || fail "metrics.jsonl lacks $k"
done
grep -q '"eval_loss"' "$W/run/metrics.jsonl" || fail "no eval_loss"
grep -q '"tag":"before"' "$W/run/samples.jsonl" || fail "no before samples"
grep -q '"tag":"epoch 1"' "$W/run/samples.jsonl" || fail "no epoch-end samples"
grep -q '"tag":"epoch 2"' "$W/run/samples.jsonl" || fail "no epoch-end samples"
grep -q '"ground_truth":"Tom had' "$W/run/samples.jsonl" || fail "samples lack the ground truth"
grep -q '"status": *"finished"' "$W/run/status.json" || fail "status is not finished"
# 40 samples - 4 eval = 36 -> 9 batches of 4 -> 4 steps/epoch -> 8 steps; checkpoints every
# 4 and at the end, save_total_limit 2 keeps checkpoint-4 and checkpoint-8.
ls "$W/run" | grep -q '^checkpoint-8$' || fail "no checkpoint-8"
ls "$W/run" | grep -q '^checkpoint-4$' || fail "no checkpoint-4"
for f in optimizer.safetensors trainer_state.json adapter_model.safetensors tokenizer.json; do
  [ -f "$W/run/checkpoint-8/$f" ] || fail "checkpoint-8 lacks $f"
done
grep -q '"peft_type": "LORA"' "$W/run/final/adapter_config.json" || fail "adapter_config.json is not PEFT's"
grep -q '"r": 8' "$W/run/final/adapter_config.json" || fail "adapter_config.json r"
# The checkpoint's adapter is the final one (same step).
cmp "$W/run/checkpoint-8/adapter_model.safetensors" "$W/run/final/adapter_model.safetensors" || fail "final != checkpoint-8"
[ "$(tr -d '\n' < "$W/run/checkpoint-8/trainer_state.json" | sed -E 's/.*"global_step": ([0-9]+).*/\1/')" = 8 ] ||
  fail "trainer_state global_step"

# Starting from an existing PEFT adapter (adapter_name_or_path) continues from its weights:
# the first logged loss is already near the trained one, far below the fresh run's first.
"$BIN" train --model "$M" --data "$W/stories.jsonl" --output_dir "$W/cont" --dataset_format text \
  --adapter_name_or_path "$W/run/final" --learning_rate 1e-4 --per_device_train_batch_size 4 --max_steps 1 \
  --logging_steps 1 --eval_range 0:4 --num_samples 0 --shuffle false --cache_dir "$W/cache" > "$W/cont.txt" 2>&1 ||
  { cat "$W/cont.txt"; fail "train from an adapter"; }
first_cont=$(sed -n 's/.*step 1\/1 | loss \([0-9.]*\).*/\1/p' "$W/cont.txt")
awk -v c="$first_cont" 'BEGIN { exit !(c < 0.9) }' || { cat "$W/cont.txt"; fail "adapter start loss $first_cont"; }
grep -q '"r": 8' "$W/cont/final/adapter_config.json" || fail "the adapter's r is kept"

# ---- bad input ----
expect_err() {  # expect_err "message part" args...
  local want=$1; shift
  if "$BIN" "$@" > "$W/err.txt" 2>&1; then cat "$W/err.txt"; fail "expected failure: $*"; fi
  grep -qF -- "$want" "$W/err.txt" || { cat "$W/err.txt"; fail "expected \"$want\""; }
}
base=(train --model "$M" --data "$W/stories.jsonl" --dataset_format text --cache_dir "$W/cache")
expect_err 'already holds a run' "${base[@]}" --output_dir "$W/run"
expect_err 'did you mean --learning_rate' "${base[@]}" --output_dir "$W/x" --learning_rat 1e-3
expect_err 'did you mean --lora_dropout' "${base[@]}" --output_dir "$W/x" --lora_dropuot 0.1
expect_err ' GiB is available (' "${base[@]}" \
  --output_dir "$W/x" --per_device_train_batch_size 100000000
printf '{"text": "ok"}\nnot json\n' > "$W/bad.jsonl"
expect_err 'bad.jsonl:2: record is not valid JSON' train --model "$M" --data "$W/bad.jsonl" --output_dir "$W/x"
printf '{"input": "q"}\n' > "$W/nofield.jsonl"
expect_err 'nofield.jsonl:1: record has no "output" field' train --model "$M" --data "$W/nofield.jsonl" \
  --output_dir "$W/x" --dataset_format pair
printf '\n\n' > "$W/empty.jsonl"
expect_err 'no usable records' train --model "$M" --data "$W/empty.jsonl" --output_dir "$W/x"
printf 'learning_rate: 1e-3\nlora_rnak: 4\n' > "$W/bad.yaml"
expect_err 'bad.yaml:2: unknown setting "lora_rnak"; did you mean "lora_r"' train --config "$W/bad.yaml"
# on_bad_record: skip counts and goes on (prepare shares the data path).
printf '{"text": "Tom had a ball."}\nnot json\n{"text": "Mia had a kite."}\n' > "$W/mixed.jsonl"
"$BIN" prepare --model "$M" --data "$W/mixed.jsonl" --on_bad_record skip --cache_dir "$W/cache" > "$W/prep.txt"
grep -q '2 records (text form), 1 bad records skipped' "$W/prep.txt" || { cat "$W/prep.txt"; fail "prepare skip count"; }
echo PASS
