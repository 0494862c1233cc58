#!/usr/bin/env bash
# bf16 from the command line: `score/generate --dtype`, `train --bf16 true` on the CPU (the log
# names the precision, says whether the CPU has bf16 instructions, and that fp32 weights are
# rounded to bf16 once at load), and bad values (one-line error, non-zero exit).
# Usage: bash bf16.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M16=$SRC/tests/fixtures/models/qwen2-untied-bf16
M=$SRC/tests/data/stories260K

# score: bf16 activations are named; f32 weights get the rounding note; auto on the CPU is f32.
"$BIN" score --model "$M16" --input_ids 5,17,99,3 --dtype bf16 | grep -q "BF16 weights, BF16 activations" ||
  fail "score --dtype bf16 does not report BF16 activations"
"$BIN" score --model "$M16" --input_ids 5,17,99,3 | grep -q "F32 activations" || fail "--dtype auto on cpu is not f32"
"$BIN" score --model "$M" --input_ids 1,410,469 --dtype bf16 2> "$W/err" > /dev/null || fail "score bf16 on f32 weights"
grep -q "F32 weights: they were rounded to bf16 once at load" "$W/err" || fail "no rounding note: $(cat "$W/err")"
# bf16 and f32 scores of one sentence differ (different arithmetic) but only by bf16 rounding.
a=$("$BIN" score --model "$M16" --input_ids 5,17,99,3,200,41 --json --dtype bf16 | sed -E 's/.*"mean_nll": ([0-9.eE+-]+),.*/\1/')
b=$("$BIN" score --model "$M16" --input_ids 5,17,99,3,200,41 --json --dtype f32 | sed -E 's/.*"mean_nll": ([0-9.eE+-]+),.*/\1/')
awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d > 0 && d < 0.05 * b) }' ||
  fail "bf16 mean NLL $a vs f32 $b"

# generate and chat take --dtype too; a bf16 greedy run of stories260K works end to end.
"$BIN" generate --help | grep -q -- "--dtype" || fail "generate has no --dtype"
"$BIN" chat --help | grep -q -- "--dtype" || fail "chat has no --dtype"
"$BIN" generate --model "$M" --input_ids 1 --max_new_tokens 5 --do_sample false --dtype bf16 --json > "$W/gen" 2> /dev/null ||
  fail "generate --dtype bf16"
grep -q '"ids"\|ids' "$W/gen" || fail "generate --dtype bf16 output: $(cat "$W/gen")"

# Bad values.
out=$("$BIN" score --model "$M16" --input_ids 5,17 --dtype fp8 2>&1) && fail "--dtype fp8 accepted"
echo "$out" | grep -q '\-\-dtype: "fp8" is not a dtype; use auto, bf16 or f32' || fail "message: $out"

# train --bf16 true on the CPU with fp32 stories260K weights.
make_stories "$W/stories.jsonl" 8
"$BIN" train --model "$M" --data "$W/stories.jsonl" --output_dir "$W/run" --dataset_format text --bf16 true \
  --lora_r 4 --per_device_train_batch_size 2 --max_steps 2 --logging_steps 1 --save_steps 100 --eval_range 0:0 \
  --num_samples 0 --cache_dir "$W/cache" > "$W/log.txt" 2>&1 || { cat "$W/log.txt"; fail "train --bf16 true failed"; }
grep -q "precision: bf16 mixed precision" "$W/log.txt" || fail "no precision line"
grep -Eq "bf16 on the CPU: (this CPU has no bf16 instructions \(fallback path\)|bf16 instructions: )" "$W/log.txt" ||
  fail "no CPU bf16 line"
grep -q "they are rounded to bf16 once at load" "$W/log.txt" || fail "no rounding note in the train log"
grep -q '"dtype": "bf16"' "$W/run/env.json" || fail "env.json lacks the dtype"
out=$("$BIN" train --model "$M" --data "$W/stories.jsonl" --output_dir "$W/run2" --bf16 maybe 2>&1) &&
  fail "--bf16 maybe accepted"
echo "$out" | grep -q 'bf16 (true, false or auto): "maybe" is not a boolean' || fail "message: $out"
echo "bf16 CLI OK"
