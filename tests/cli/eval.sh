#!/usr/bin/env bash
# lorafit eval end to end on the bundled DISC-Law-Eval data with the stories260K fixture model
# and its fixture adapter (raw prompts: the model has no chat template; Chinese text becomes
# byte tokens, so long prompts exceed the 512-position context and must be truncated and
# counted). Checks: the --json shape for one and several models, the table, the files in
# --output_dir, that --predictions scoring of the written predictions.jsonl gives exactly the
# same numbers, batch 1 = batch 8 (greedy), and bad input (one line naming file, line, field).
# Usage: bash eval.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
LORAFIT=$1
ROOT=$2
MODEL=$ROOT/tests/data/stories260K
ADAPTER=$ROOT/tests/fixtures/adapter/stories260K-qv-rslora
MCQ=$ROOT/tests/data/disc-law/eval/objective
QA=$ROOT/tests/data/disc-law/eval/subjective/qa_short_answer.json
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
py() { python3 -c "$@"; }

# 1. MCQ, base vs adapter, one call: the per-model objects, files, and the table.
"$LORAFIT" eval --model "$MODEL" --adapter base --adapter "$ADAPTER" --raw --data "$MCQ" --task mcq \
  --limit 20 --max_new_tokens 8 --batch_size 8 --num_few_shot 1 --json --output_dir "$TMP/mcq" > "$TMP/mcq.json" \
  2> "$TMP/mcq.err" || fail "mcq eval: $(cat "$TMP/mcq.err")"
py "
import json, sys
j = json.load(open('$TMP/mcq.json'))
assert list(j) == ['base', 'stories260K-qv-rslora'], list(j)
for name, s in j.items():
    assert list(s) == ['task', 'n', 'accuracy', 'per_source'], s
    assert s['task'] == 'mcq' and s['n'] == 20, s
    # --limit 20 takes the first 20 rows of the sorted files: mcq_mult_cpa.csv has 120
    assert list(s['per_source']) == ['mcq_mult_cpa'], s
    assert abs(s['accuracy'] - sum(s['per_source'].values()) / len(s['per_source'])) < 1e-9
r = json.load(open('$TMP/mcq/eval_results.json'))
assert r['results'] == j and r['n'] == 20 and r['models'] == list(j), r
assert r['truncated'] > 0, r  # byte-token Chinese prompts exceed the 512 positions
rows = [json.loads(l) for l in open('$TMP/mcq/predictions.jsonl')]
assert len(rows) == 40 and {x['model'] for x in rows} == set(j)
for x in rows:
    assert set(x) >= {'model', 'id', 'source', 'prediction', 'extracted', 'answer', 'correct', 'reference'}, x
    assert set(x['answer']) <= set('ABCD')
acc = 100 * sum(x['correct'] for x in rows if x['model'] == 'base') / 20
assert abs(acc - j['base']['accuracy']) < 1e-9
" || fail "mcq report shape"
grep -q "were longer than the context" "$TMP/mcq.err" || fail "no truncation warning: $(cat "$TMP/mcq.err")"

# 1b. The dashboard serves the results: the eval folder is listed, its rows joined per question.
"$LORAFIT" dashboard "$TMP/mcq" --port 0 > "$TMP/dash.out" 2> "$TMP/dash.err" &
DASH=$!
for _ in $(seq 100); do grep -q "http://" "$TMP/dash.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$TMP/dash.out" | head -1)
[ -n "$url" ] || { kill $DASH; fail "dashboard did not start: $(cat "$TMP/dash.err")"; }
curl -sf "${url%/}/api/evals" > "$TMP/evals.json" && curl -sf "${url%/}/api/eval?id=mcq" > "$TMP/eval_api.json" || true
curl -sf "${url%/}/eval.js" > "$TMP/eval.js" || true
kill $DASH; wait $DASH 2>/dev/null || true
py "
import json
assert json.load(open('$TMP/evals.json')) == {'runs': ['mcq']}, open('$TMP/evals.json').read()
e = json.load(open('$TMP/eval_api.json'))
assert e['found'] and e['models'] == ['base', 'stories260K-qv-rslora'] and len(e['rows']) == 20, e.keys()
r = e['rows'][0]
assert set(r['answers']) == set(e['models']) and isinstance(r['changed'], bool)
" || fail "dashboard eval API"
grep -q "changed by fine-tuning\|changedOnly" "$TMP/eval.js" || fail "eval.js not served"

# 2. Re-scoring the written predictions gives exactly the same numbers.
"$LORAFIT" eval --predictions "$TMP/mcq/predictions.jsonl" --task mcq --json > "$TMP/mcq2.json"
cmp -s <(py "import json; print(json.dumps(json.load(open('$TMP/mcq.json')), sort_keys=True))") \
       <(py "import json; print(json.dumps(json.load(open('$TMP/mcq2.json')), sort_keys=True))") \
  || fail "--predictions rescoring differs: $(cat "$TMP/mcq.json") vs $(cat "$TMP/mcq2.json")"

# 3. QA with one model: the --json shape, rescoring equal, batch 1 = batch 8 (greedy).
"$LORAFIT" eval --model "$MODEL" --raw --data "$QA" --task qa --limit 6 --max_new_tokens 24 --batch_size 8 \
  --json --output_dir "$TMP/qa" > "$TMP/qa.json" 2> /dev/null
"$LORAFIT" eval --model "$MODEL" --raw --data "$QA" --task qa --limit 6 --max_new_tokens 24 --batch_size 1 \
  --output_dir "$TMP/qa1" > "$TMP/qa1.txt" 2> /dev/null
py "
import json
j = json.load(open('$TMP/qa.json'))
assert list(j) == ['task', 'n', 'rouge-1', 'rouge-2', 'rouge-l', 'bleu-4'] and j['n'] == 6, j
a = [json.loads(l)['prediction'] for l in open('$TMP/qa/predictions.jsonl')]
b = [json.loads(l)['prediction'] for l in open('$TMP/qa1/predictions.jsonl')]
assert a == b and len(a) == 6 and any(a), (a, b)
" || fail "qa report"
"$LORAFIT" eval --predictions "$TMP/qa/predictions.jsonl" --task qa --json > "$TMP/qa2.json"
[ "$(cat "$TMP/qa.json")" = "$(cat "$TMP/qa2.json")" ] || fail "qa rescoring: $(cat "$TMP/qa.json") vs $(cat "$TMP/qa2.json")"
grep -q "^rouge-1 " "$TMP/qa1.txt" || fail "qa table: $(cat "$TMP/qa1.txt")"

# 4. Bad input: one line naming the file, line and field; non-zero exit; no output files.
expect_error() {  # expect_error WANT_SUBSTRING ARGS...
  local want=$1
  shift
  if "$LORAFIT" eval "$@" > "$TMP/out" 2> "$TMP/err"; then fail "no error for $*"; fi
  [ "$(wc -l < "$TMP/err")" -eq 1 ] || fail "not one line: $(cat "$TMP/err")"
  grep -qF -- "$want" "$TMP/err" || fail "want '$want', got: $(cat "$TMP/err")"
}
printf 'input,output,A,B,C,D\nq1,B,a,b,c,d\nq2,E,a,b,c,d\n' > "$TMP/bad_letter.csv"
expect_error "bad_letter.csv line 3: field 'output' is 'E'" --model "$MODEL" --data "$TMP/bad_letter.csv" --task mcq
printf 'input,A,B,C,D\nq1,a,b,c,d\n' > "$TMP/no_output.csv"
expect_error "no_output.csv line 1: no column 'output'" --model "$MODEL" --data "$TMP/no_output.csv" --task mcq
printf '{"input": "q", "output": "A"}\n{"input": "q2"}\n' > "$TMP/missing.jsonl"
expect_error "missing.jsonl line 2: missing field 'output'" --model "$MODEL" --data "$TMP/missing.jsonl" --task qa
expect_error "--task: unknown task 'essay'" --model "$MODEL" --data "$QA" --task essay
printf '{"id": "1", "prediction": "A", "reference": "X"}\n' > "$TMP/badpred.jsonl"
expect_error "badpred.jsonl line 1: field 'reference' is 'X'" --predictions "$TMP/badpred.jsonl" --task mcq
[ ! -e "$TMP/none/eval_results.json" ] || fail "half-written output"
echo "eval CLI: OK"
