#!/usr/bin/env bash
# report_to and the step-0 eval point (issue 16 item 4): `report_to: tensorboard` turns on the
# TensorBoard event file of the run folder (with the train and eval scalars), an ordinary run
# logs an eval loss at step 0 (the untrained model) before its first step, and an unknown
# tracker is a one-line error.
# Usage: bash train_report.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
make_stories "$W/stories.jsonl" 12
common=(--model "$SRC/tests/data/stories260K" --data "$W/stories.jsonl" --dataset_format text --lora_r 2
        --per_device_train_batch_size 2 --max_steps 2 --logging_steps 1 --eval_range 0:2 --num_samples 0
        --cache_dir "$W/cache" --quiet)

printf 'report_to: tensorboard\n' > "$W/run.yaml"
"$BIN" train "${common[@]}" --config "$W/run.yaml" --output_dir "$W/tb" > "$W/log" 2>&1 || { cat "$W/log"; fail "train"; }
ev=$(ls "$W/tb" | grep -E '^events\.out\.tfevents\.' || true)
[ -n "$ev" ] || fail "report_to: tensorboard wrote no event file: $(ls "$W/tb")"
grep -aq 'train/loss' "$W/tb/$ev" || fail "event file lacks train/loss"
grep -aq 'eval/loss' "$W/tb/$ev" || fail "event file lacks eval/loss"
# Step 0: the first metrics row is the eval loss of the untrained model.
first=$(head -1 "$W/tb/metrics.jsonl")
echo "$first" | grep -q '"step":0[,}]' && echo "$first" | grep -Eq '"eval_loss":[0-9.]+' && ! echo "$first" | grep -q '"loss"' ||
  fail "first metrics row is not a step-0 eval: $(head -1 "$W/tb/metrics.jsonl")"

# The default (none) writes no event file; so does --report_to none.
"$BIN" train "${common[@]}" --output_dir "$W/plain" > "$W/log" 2>&1 || { cat "$W/log"; fail "train"; }
if ls "$W/plain" | grep -q tfevents; then fail "an event file without report_to"; fi

if "$BIN" train "${common[@]}" --output_dir "$W/bad" --report_to wandb > "$W/out" 2> "$W/err"; then
  fail "report_to wandb exited 0"
fi
[ "$(cat "$W/err")" = 'lorafit: error: report_to: "wandb" is not supported; use tensorboard or none (lorafit writes TensorBoard event files; the dashboard reads the run folder itself)' ] ||
  fail "report_to wandb: $(cat "$W/err")"
[ ! -e "$W/bad" ] || fail "a rejected run left a folder"
echo PASS
