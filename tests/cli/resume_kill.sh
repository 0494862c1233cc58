#!/usr/bin/env bash
# Exact resume: a run killed with SIGKILL at a random step and resumed with
# --resume_from_checkpoint latest ends with a final adapter byte-identical to a run that was
# never interrupted (CPU, same settings; LoRA dropout on, so the RNG position matters too).
# Also: a leftover checkpoint-N.tmp/ (a kill during a checkpoint write) is ignored.
# Usage: bash resume_kill.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M=$SRC/tests/data/stories260K
make_stories "$W/stories.jsonl" 44
args=(train --model "$M" --data "$W/stories.jsonl" --dataset_format text --lora_target all-linear --lora_r 4
      --lora_dropout 0.1 --learning_rate 2e-3 --per_device_train_batch_size 2 --gradient_accumulation_steps 2
      --num_train_epochs 2 --warmup_steps 2 --logging_steps 1 --save_steps 1 --eval_range 0:4 --num_samples 0
      --cache_dir "$W/cache" --quiet)
# 40 samples / 2 = 20 batches / 2 = 10 steps per epoch, 20 steps.
"$BIN" "${args[@]}" --output_dir "$W/full" > "$W/full.log" 2>&1 || { cat "$W/full.log"; fail "full run"; }

# Interrupted run: kill -9 as soon as checkpoint-K exists, K random in 3..17.
K=$((3 + RANDOM % 15))
"$BIN" "${args[@]}" --output_dir "$W/cut" > "$W/cut.log" 2>&1 &
pid=$!
for _ in $(seq 1 6000); do
  [ -d "$W/cut/checkpoint-$K" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.01
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
last=$(ls "$W/cut" | sed -n 's/^checkpoint-\([0-9]*\)$/\1/p' | sort -n | tail -1)
echo "killed at checkpoint $K (latest complete checkpoint: ${last:-none})"
[ -n "$last" ] || fail "no checkpoint before the kill"
[ -d "$W/cut/final" ] && [ "$last" -ge 20 ] && echo "(the run finished before the kill landed)"
# Simulate a kill in the middle of a checkpoint write: a half-written .tmp folder.
mkdir -p "$W/cut/checkpoint-99.tmp" && echo partial > "$W/cut/checkpoint-99.tmp/adapter_model.safetensors"

"$BIN" "${args[@]}" --output_dir "$W/cut" --resume_from_checkpoint latest > "$W/resume.log" 2>&1 ||
  { cat "$W/resume.log"; fail "resume"; }
grep -q "resuming from .*checkpoint-$last at step $last/20" "$W/resume.log" || { cat "$W/resume.log"; fail "resume point"; }
cmp "$W/full/final/adapter_model.safetensors" "$W/cut/final/adapter_model.safetensors" ||
  fail "resumed final adapter differs from the uninterrupted run (killed after checkpoint $last)"
cmp "$W/full/checkpoint-20/optimizer.safetensors" "$W/cut/checkpoint-20/optimizer.safetensors" ||
  fail "optimizer state differs"

# A resume with different settings is refused.
if "$BIN" "${args[@]}" --output_dir "$W/cut" --resume_from_checkpoint "$W/cut/checkpoint-$last" --learning_rate 1e-3 \
   > "$W/bad.log" 2>&1; then fail "resume with another learning_rate was accepted"; fi
grep -q "written with other settings" "$W/bad.log" || { cat "$W/bad.log"; fail "resume mismatch message"; }
echo PASS
