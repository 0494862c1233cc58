#!/usr/bin/env bash
# Interruption keeps the work: SIGINT (Ctrl-C) or SIGTERM during `lorafit train` finishes the
# current optimizer step, writes checkpoint-N atomically, marks status.json "interrupted",
# prints the command that resumes, and exits 128 + signal. Running that command verbatim
# ends with the adapter an uninterrupted run writes (bit for bit) and a metrics.jsonl whose
# rows are the uninterrupted run's rows (no step twice, none missing). A second Ctrl-C
# exits at once with status.json still "interrupted" at the last checkpoint.
# Usage: bash train_interrupt.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
make_stories stories.jsonl 44
args=(train --model "$SRC/tests/data/stories260K" --data stories.jsonl --dataset_format text --lora_target all-linear
      --lora_r 4 --lora_dropout 0.1 --learning_rate 2e-3 --per_device_train_batch_size 2 --gradient_accumulation_steps 2
      --num_train_epochs 2 --warmup_steps 2 --logging_steps 1 --save_steps 100 --eval_range 0:4 --num_samples 0
      --cache_dir "$W/cache")
"$BIN" "${args[@]}" --output_dir full > full.log 2>&1 || { cat full.log; fail "uninterrupted run"; }

# rows FILE: "step loss" of every metrics.jsonl row with a loss (python3 stdlib only).
rows() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "loss" in r: print(r["step"], r["loss"])' "$1"; }

# interrupt SIG DIR: start a run, send SIG once step 5 is logged, check what it left.
interrupt() {
  local sig=$1 dir=$2 code=$3
  "$BIN" "${args[@]}" --output_dir "$dir" > "$dir.log" 2>&1 &
  local pid=$! rc=0
  # Polled every 10 ms (not wait_until's 50 ms): 15 fast steps remain after step 5.
  local start=$SECONDS
  until grep -q '"step":5,' "$dir/metrics.jsonl" 2>/dev/null; do
    kill -0 $pid 2>/dev/null || { cat "$dir.log"; fail "$sig: the run ended before step 5"; }
    ((SECONDS - start < 300)) || { cat "$dir.log"; fail "$sig: no step 5 in 300 s"; }
    sleep 0.01
  done
  kill -"$sig" $pid
  wait $pid || rc=$?
  [ "$rc" = "$code" ] || { cat "$dir.log"; fail "$sig: exit status $rc, expected $code"; }
  local k
  k=$(sed -n 's/.*"step": \([0-9]*\).*/\1/p' "$dir/status.json")
  grep -q '"status": "interrupted"' "$dir/status.json" || { cat "$dir/status.json"; fail "$sig: status not interrupted"; }
  [ "$k" -ge 5 ] && [ "$k" -lt 20 ] || { cat "$dir/status.json"; fail "$sig: stopped at step $k"; }
  [ -f "$dir/checkpoint-$k/optimizer.safetensors" ] || fail "$sig: no checkpoint-$k"
  [ ! -d "$dir/final" ] || fail "$sig: an interrupted run wrote final/"
  grep -q "interrupted by SIG$sig after step $k/20; checkpoint-$k written" "$dir.log" || { cat "$dir.log"; fail "$sig: message"; }
  grep -q "^resume with:  " "$dir.log" || { cat "$dir.log"; fail "$sig: no resume hint"; }
  # The log rows up to the stop are the uninterrupted run's (the stop step is logged too).
  diff <(rows full/metrics.jsonl | head -"$k") <(rows "$dir/metrics.jsonl") || fail "$sig: rows before the stop"
  echo "$sig: stopped after step $k"
}
interrupt INT cut 130
interrupt TERM term 143

# The printed command, run verbatim, resumes: same adapter and optimizer state, same rows.
cmd=$(sed -n 's/^resume with:  //p' cut.log)
eval "$cmd" > resume.log 2>&1 || { cat resume.log; fail "the printed resume command failed: $cmd"; }
grep -q "resuming from .*checkpoint-" resume.log || { cat resume.log; fail "did not resume"; }
cmp full/final/adapter_model.safetensors cut/final/adapter_model.safetensors || fail "resumed adapter differs"
cmp full/checkpoint-20/optimizer.safetensors cut/checkpoint-20/optimizer.safetensors || fail "resumed optimizer differs"
diff <(rows full/metrics.jsonl) <(rows cut/metrics.jsonl) || fail "metrics rows after resume differ from the unbroken run"
grep -q '"status": "finished"' cut/status.json || fail "resumed run not finished"

# Resume from an older checkpoint after later rows were logged: those rows are dropped and
# logged again, once (before, steps 6..10 appeared twice after resuming from checkpoint-5).
"$BIN" "${args[@]}" --output_dir old --save_steps 5 --max_steps 20 > old.log 2>&1 || { cat old.log; fail "run old"; }
rm -rf old/checkpoint-15 old/checkpoint-20 old/checkpoint-10
"$BIN" "${args[@]}" --output_dir old --save_steps 5 --max_steps 20 --resume_from_checkpoint latest > old2.log 2>&1 ||
  { cat old2.log; fail "resume old"; }
grep -q "resuming from .*checkpoint-5 at step 5/20" old2.log || { cat old2.log; fail "resume point"; }
diff <(rows full/metrics.jsonl) <(rows old/metrics.jsonl) || fail "rows duplicated or lost after resuming from checkpoint-5"

# A second Ctrl-C exits at once. Slow steps (400 samples each) so that the second signal,
# sent as soon as the run has said it heard the first, lands inside the same step.
make_stories many.jsonl 400
slow=(train --model "$SRC/tests/data/stories260K" --data many.jsonl --dataset_format text --lora_target all-linear
      --lora_r 4 --per_device_train_batch_size 100 --gradient_accumulation_steps 4 --max_steps 400 --logging_steps 1
      --save_steps 2 --eval_range 0:4 --num_samples 0 --cache_dir "$W/cache" --gradient_checkpointing false)
"$BIN" "${slow[@]}" --output_dir twice > twice.log 2>&1 &
pid=$!
wait_until 300 test -d twice/checkpoint-2 || { cat twice.log; fail "no checkpoint-2 in 300 s"; }
kill -INT $pid
heard_first() { grep -q "SIGINT: finishing the current step" twice.log; }
wait_until 60 heard_first || { cat twice.log; fail "the first Ctrl-C was not acknowledged"; }
kill -INT $pid
rc=0; wait $pid || rc=$?
[ "$rc" = 130 ] || { cat twice.log; fail "second Ctrl-C: exit status $rc"; }
grep -q '"status": "interrupted"' twice/status.json || { cat twice/status.json; fail "second Ctrl-C: status"; }
if grep -q 'stopped at once by a second SIGINT' twice/status.json; then
  k=$(sed -n 's/.*"step": \([0-9]*\).*/\1/p' twice/status.json)
  [ -d "twice/checkpoint-$k" ] || fail "status names checkpoint-$k, which is not there"
  grep -q "resume with:  " twice.log || { cat twice.log; fail "second Ctrl-C: no resume hint"; }
  echo "second SIGINT: exited at once, last checkpoint $k"
else
  cat twice.log twice/status.json
  fail "the second SIGINT did not end the run at once (the step may have finished first: make steps slower)"
fi
echo PASS
