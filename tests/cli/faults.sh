#!/usr/bin/env bash
# Faults a run survives with a named message, a non-zero exit, status.json "failed" with
# that message, and no half-written output:
#   1. the model file truncated while training runs (SIGBUS on the memory map, caught);
#   2. the disk filling up at a checkpoint (RLIMIT_FSIZE: writes fail with EFBIG);
#   3. a memory limit (RLIMIT_AS, and a real cgroup v1/v2 memory limit where this machine
#      lets us make one): the pre-flight plan names the limit it used and refuses;
#   4. an Inf in a base weight, and a NaN in a checkpoint's optimizer state: named as bad
#      input, not as a learning-rate problem.
# Usage: bash faults.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
make_stories "$W/stories.jsonl" 40
fresh_model() { rm -rf "$W/m" && cp -r "$SRC/tests/data/stories260K" "$W/m"; }
args=(train --model "$W/m" --data "$W/stories.jsonl" --dataset_format text --lora_r 4 --learning_rate 1e-3
      --per_device_train_batch_size 2 --logging_steps 1 --eval_range 0:2 --num_samples 0 --cache_dir "$W/cache")
status_of() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["status"]); print(s.get("error",""))' "$1/status.json"; }
expect_failed_run() {  # expect_failed_run OUTDIR LOG "message"
  local out=$1 log=$2 want=$3
  grep 'lorafit: error: ' "$log" | grep -qF -- "$want" || { cat "$log"; fail "expected the error \"$want\""; }
  [ "$(grep -c 'lorafit: error:' "$log")" -eq 1 ] || { cat "$log"; fail "one error line"; }
  local st
  st=$(status_of "$out")
  [ "$(head -1 <<< "$st")" = failed ] || { echo "$st"; fail "status.json should say failed"; }
  grep -qF -- "$want" <<< "$st" || { echo "$st"; fail "status.json error should be the message"; }
  ! ls "$out" | grep -q '\.tmp' || { ls -la "$out"; fail "a half-written file or folder is left in $out"; }
}

# ---- 1. the model truncated mid-run ----
fresh_model
"$BIN" "${args[@]}" --output_dir "$W/trunc" --max_steps 100000 > "$W/trunc.log" 2>&1 &
pid=$!
step2_logged() { grep -q '"step":2,' "$W/trunc/metrics.jsonl" 2>/dev/null || ! kill -0 $pid 2>/dev/null; }
wait_until 300 step2_logged || fail "truncated model: no step 2 in 300 s"
truncate -s 4096 "$W/m/model.safetensors"  # the header survives, the weights are gone
rc=0
wait $pid || rc=$?
[ $rc -eq 1 ] || { cat "$W/trunc.log"; fail "truncated model: exit code $rc, expected 1"; }
expect_failed_run "$W/trunc" "$W/trunc.log" \
  "$W/m/model.safetensors: the file was truncated (reading it past its new end faulted) while lorafit was reading it; stop whatever writes it, restore the file and start again (a training run resumes with --resume_from_checkpoint latest)"
echo "ok: truncated model"

# ---- 2. the disk full at the first checkpoint ----
fresh_model
# 200 KiB per file: logs and configs fit, the rank-64 adapter (~1.1 MB) does not. SIGXFSZ
# ignored, as a full disk gives ENOSPC: the write fails, the process goes on to report it.
rc=0
( trap '' XFSZ; ulimit -f 200; exec "$BIN" "${args[@]}" --lora_r 64 --lora_target all-linear --output_dir "$W/full" \
    --max_steps 4 --save_steps 2 ) > "$W/full.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$W/full.log"; fail "disk full: exit code $rc, expected 1"; }
expect_failed_run "$W/full" "$W/full.log" \
  "could not write $W/full/checkpoint-2 ($W/full/checkpoint-2.tmp/adapter_model.safetensors: write failed: File too large); is the disk full? Earlier checkpoints are intact; free space and resume with --resume_from_checkpoint latest"
[ ! -e "$W/full/checkpoint-2" ] || { ls -la "$W/full/checkpoint-2"; fail "a checkpoint folder was left half-written"; }
echo "ok: disk full"

# ---- 2b. the disk filling up between checkpoints ----
# checkpoint-2 is written, then the 200 KiB limit is set on the running process (prlimit):
# the next checkpoint fails, the earlier one stays intact and loadable.
if command -v prlimit >/dev/null; then
  fresh_model
  ( trap '' XFSZ; exec "$BIN" "${args[@]}" --lora_r 64 --lora_target all-linear --output_dir "$W/fill" \
      --max_steps 100000 --save_steps 2 ) > "$W/fill.log" 2>&1 &
  pid=$!
  wait_until 300 test -f "$W/fill/checkpoint-2/adapter_model.safetensors" || { cat "$W/fill.log"; fail "no checkpoint-2"; }
  prlimit --pid $pid --fsize=204800
  rc=0
  wait $pid || rc=$?
  [ $rc -eq 1 ] || { cat "$W/fill.log"; fail "disk full between checkpoints: exit code $rc, expected 1"; }
  k=$(sed -n 's|.*could not write .*/checkpoint-\([0-9]*\) (.*|\1|p' "$W/fill.log" | head -1)
  [ -n "$k" ] && [ "$k" -gt 2 ] || { cat "$W/fill.log"; fail "no failed checkpoint after checkpoint-2"; }
  expect_failed_run "$W/fill" "$W/fill.log" \
    "could not write $W/fill/checkpoint-$k ($W/fill/checkpoint-$k.tmp/adapter_model.safetensors: write failed: File too large); is the disk full? Earlier checkpoints are intact; free space and resume with --resume_from_checkpoint latest"
  [ ! -e "$W/fill/checkpoint-$k" ] || fail "checkpoint-$k was left half-written"
  "$BIN" generate --model "$W/m" --adapter "$W/fill/checkpoint-2" --prompt hi --raw --max_new_tokens 2 \
    > "$W/fill_gen.log" 2>&1 || { cat "$W/fill_gen.log"; fail "checkpoint-2 does not load after the disk filled"; }
  echo "ok: disk full between checkpoints (checkpoint-2 intact, checkpoint-$k refused)"
else
  echo "skip: no prlimit here (util-linux) for the between-checkpoints case"
fi

# ---- 3. memory limits ----
fresh_model
# 100000 rows per micro-batch plan far more than 1 GiB; the plan must say which limit it used.
rc=0
( ulimit -v 1048576; exec "$BIN" "${args[@]}" --output_dir "$W/mem" --per_device_train_batch_size 100000 ) \
  > "$W/mem.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$W/mem.log"; fail "RLIMIT_AS: exit code $rc, expected 1"; }
grep -qE 'lorafit: error: the run needs about [0-9.]+ GiB but only [0-9.]+ GiB is available \(RLIMIT_AS \(ulimit -v\) of 1\.00 GiB\); lower cutoff_len' \
  "$W/mem.log" || { cat "$W/mem.log"; fail "RLIMIT_AS named in the plan"; }
echo "ok: RLIMIT_AS"
# A real cgroup where we may make one (root, cgroup v2 with the memory controller, or v1).
cg=""
if [ "$(id -u)" -eq 0 ]; then
  for base in /sys/fs/cgroup /sys/fs/cgroup/memory; do
    if [ -w "$base" ] && { [ -f "$base/cgroup.controllers" ] && grep -qw memory "$base/cgroup.controllers" || [ -f "$base/memory.limit_in_bytes" ]; }; then
      cg="$base/lorafit-faults-$$"
      mkdir "$cg" 2>/dev/null || cg=""
      [ -n "$cg" ] && break
    fi
  done
fi
if [ -n "$cg" ]; then
  if [ -f "$cg/memory.max" ]; then echo $((1024 * 1024 * 1024)) > "$cg/memory.max"; kind="cgroup v2 memory.max"
  else echo $((1024 * 1024 * 1024)) > "$cg/memory.limit_in_bytes"; kind="cgroup v1 memory.limit_in_bytes"; fi
  rc=0
  ( echo $BASHPID > "$cg/cgroup.procs"; exec "$BIN" "${args[@]}" --output_dir "$W/cg" --per_device_train_batch_size 100000 ) \
    > "$W/cg.log" 2>&1 || rc=$?
  rmdir "$cg" 2>/dev/null || true
  [ $rc -eq 1 ] || { cat "$W/cg.log"; fail "cgroup: exit code $rc, expected 1"; }
  grep -qF "GiB is available ($kind of $cg (1.00 GiB)); lower cutoff_len" "$W/cg.log" ||
    { cat "$W/cg.log"; fail "the cgroup limit named in the plan"; }
  echo "ok: $kind"
else
  echo "skip: no writable cgroup memory controller here (not root or not delegated)"
fi

# ---- 4. NaN/Inf inputs ----
fresh_model
python3 - "$W/m/model.safetensors" model.layers.0.mlp.up_proj.weight <<'PY'
import json, struct, sys
path, name = sys.argv[1], sys.argv[2]
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    begin = json.loads(f.read(n))[name]["data_offsets"][0]
    f.seek(8 + n + begin + 4 * 3)          # element 3 of the F32 tensor
    f.write(struct.pack("<f", float("inf")))
PY
rc=0
"$BIN" "${args[@]}" --output_dir "$W/inf" --max_steps 2 > "$W/inf.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$W/inf.log"; fail "Inf weight: exit code $rc, expected 1"; }
expect_failed_run "$W/inf" "$W/inf.log" \
  "the base model's weight model.layers.0.mlp.up_proj.weight holds Inf (element 3): the model files are damaged, so this is bad input, not training; re-download or re-convert the model"
! grep -q 'lower learning_rate' "$W/inf.log" || { cat "$W/inf.log"; fail "an Inf weight is not a learning-rate problem"; }
echo "ok: Inf in a weight"

fresh_model
"$BIN" "${args[@]}" --output_dir "$W/opt" --max_steps 2 --save_steps 2 > "$W/opt.log" 2>&1 || { cat "$W/opt.log"; fail "run to damage"; }
python3 - "$W/opt/checkpoint-2/optimizer.safetensors" <<'PY'
import json, struct, sys
with open(sys.argv[1], "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    begin = json.loads(f.read(n))["exp_avg_sq"]["data_offsets"][0]
    f.seek(8 + n + begin)
    f.write(struct.pack("<f", float("nan")))
PY
rc=0
"$BIN" "${args[@]}" --output_dir "$W/opt" --max_steps 4 --resume_from_checkpoint latest > "$W/opt2.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$W/opt2.log"; fail "NaN optimizer state: exit code $rc, expected 1"; }
grep -qE "lorafit: error: .*checkpoint-2/optimizer.safetensors: exp_avg_sq holds NaN at element 0 \(of base_model\.model\.[a-z0-9_.]+\.lora_A\.weight\): the checkpoint is damaged; resume from an earlier one" \
  "$W/opt2.log" || { cat "$W/opt2.log"; fail "the damaged optimizer state is named"; }
echo "ok: NaN in the optimizer state"
echo PASS
