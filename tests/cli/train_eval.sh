#!/usr/bin/env bash
# lorafit train --eval_data: benchmark scores logged as metrics before the first step, every
# eval_steps and at the end, and equal to what `lorafit eval` reports for the same model
# (base at step 0, the final adapter at the end); a bad eval set fails before training.
# stories260K has no chat template, so both sides prompt with the raw text.
# Usage: bash train_eval.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M=$SRC/tests/data/stories260K
make_stories "$W/stories.jsonl" 40
cat > "$W/qa.jsonl" <<'Q'
{"id": "q1", "input": "Tom had a red ball. One day Tom went to the park", "output": " with the red ball. Mia saw the red ball."}
{"id": "q2", "input": "Mia had a blue kite. One day", "output": " Mia went to the garden with the blue kite."}
{"id": "q3", "input": "Ben had a big box.", "output": " One day Ben went to the beach with the big box."}
Q
"$BIN" train --model "$M" --data "$W/stories.jsonl" --output_dir "$W/run" --dataset_format text \
  --lora_target all-linear --lora_r 8 --learning_rate 3e-3 --per_device_train_batch_size 4 --gradient_accumulation_steps 1 --num_train_epochs 1 \
  --logging_steps 5 --save_steps 100 --eval_steps 5 --num_samples 0 --eval_data "$W/qa.jsonl" --eval_task qa \
  --eval_max_new_tokens 12 --cache_dir "$W/cache" > "$W/log.txt" 2>&1 || { cat "$W/log.txt"; fail "train exited non-zero"; }
grep -q "eval_qa_bleu_4" "$W/log.txt" || fail "no eval line in the log: $(cat "$W/log.txt")"
steps=$(python3 -c "
import json
rows = [json.loads(l) for l in open('$W/run/metrics.jsonl')]
print(' '.join(str(r['step']) for r in rows if 'eval_qa_bleu_4' in r))")
[ "$steps" = "0 5 10" ] || fail "eval_data scored at steps '$steps', want '0 5 10'"

get() {  # get STEP KEY
  python3 -c "
import json
rows = [json.loads(l) for l in open('$W/run/metrics.jsonl')]
print(next(r['$2'] for r in rows if r['step'] == $1 and '$2' in r))"
}
for model in base final; do
  args=(--model "$M" --raw --data "$W/qa.jsonl" --task qa --max_new_tokens 12 --json)
  [ $model = final ] && args+=(--adapter "$W/run/final")
  "$BIN" eval "${args[@]}" > "$W/eval_$model.json" 2> /dev/null
done
python3 - "$W" <<'P' || fail "train-time scores differ from lorafit eval"
import json, sys
w = sys.argv[1]
rows = [json.loads(l) for l in open(f"{w}/run/metrics.jsonl")]
at = {r["step"]: r for r in rows if "eval_qa_bleu_4" in r}
for step, name in [(0, "base"), (10, "final")]:
    e = json.load(open(f"{w}/eval_{name}.json"))
    for k in ["rouge-1", "rouge-2", "rouge-l", "bleu-4"]:
        got = at[step]["eval_qa_" + k.replace("-", "_")]
        assert abs(got - e[k]) < 1e-9, (step, k, got, e[k])
    assert at[step]["eval_qa_n"] == 3
assert any(at[0][k] != at[10][k] for k in at[0] if k.startswith("eval_qa_") and k != "eval_qa_n"), at
P

# A bad eval set fails before any step, naming the file, line and field.
printf '{"input": "x"}\n' > "$W/bad.jsonl"
if "$BIN" train --model "$M" --data "$W/stories.jsonl" --output_dir "$W/run2" --dataset_format text \
  --eval_data "$W/bad.jsonl" --eval_task qa > "$W/out" 2> "$W/err"; then fail "bad eval_data accepted"; fi
grep -q "bad.jsonl line 1: missing field 'output'" "$W/err" || fail "bad eval_data message: $(cat "$W/err")"
[ ! -e "$W/run2/metrics.jsonl" ] || fail "training started with a bad eval set"
echo "train --eval_data: OK"
