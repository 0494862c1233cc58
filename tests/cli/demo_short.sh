#!/usr/bin/env bash
# `lorafit demo` in its short CI form (part 1, the recipe on the random model, cut to 2 steps;
# part 2, stories260K learning a new character, as users see it). Asserts the learning the
# demo claims, computed here from the files it leaves (python3 stdlib only):
#  - part 2's greedy continuation of the trained stories' opening matches the trained text
#    (character-level ROUGE-L F ≥ 0.8 after; ≤ 0.6 before, when the model tells its own story);
#  - the held-out sentence (in no trained story) continues with the new name after, not before;
#  - part 2's training loss (step 1 -> last) and held-out loss (4 stories) fall by half or more;
#  - every printed next-step command runs as printed; the model is created deterministically;
#  - an unwritable runs folder or cache folder is one line naming it and the way out.
# Usage: bash demo_short.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
DASH=""
trap '[ -n "$DASH" ] && kill "$DASH" 2>/dev/null; rm -rf "$W"' EXIT
cd "$W"
export XDG_CACHE_HOME="$W/cache"
"$BIN" demo --max_steps 2 --train_range 3:40 --max_new_tokens 4 --logging_steps 1 > out.txt 2>&1 ||
  { cat out.txt; fail "demo exited non-zero"; }
cat out.txt
M=$W/cache/lorafit/demo-model
R=$W/lorafit-demo
for f in config.json model.safetensors tokenizer.json tokenizer_config.json generation_config.json; do
  [ -f "$M/$f" ] || fail "demo model lacks $f"
done
grep -q '"model_type": "qwen2"' "$M/config.json" || fail "demo model config"
grep -q 'RANDOM weights' out.txt || fail "the demo must say part 1's model is random"
grep -q 'a random model learns no law' out.txt || fail "part 1 must say it learns nothing"
grep -q 'This is memorisation of a tiny' out.txt || fail "part 2 must say what kind of learning it is"
grep -q 'created the demo model' out.txt || fail "first use must create the model"
grep -q '^Q1: ' out.txt && grep -q '^  before: ' out.txt && grep -q '^  after: ' out.txt || fail "before/after answers"
grep -Eq '^part 2 held-out loss \(4 stories\) +[0-9.]+ +[0-9.]+$' out.txt || fail "before/after table"
# The eval scorer's row (ROUGE-L x100 over jieba words): the trained opening's continuation
# reproduces the trained text after, not before (the character-level check below is independent).
read -r rb ra < <(sed -nE "s/^part 2 opening's ROUGE-L vs trained text +([0-9.]+) +([0-9.]+)$/\1 \2/p" out.txt)
[ -n "${ra:-}" ] || fail "no ROUGE-L row in the before/after table"
python3 -c "import sys; b, a = map(float, sys.argv[1:]); sys.exit(0 if a >= 80 and b <= 60 else 1)" "$rb" "$ra" ||
  fail "part 2 ROUGE-L before $rb after $ra: expected after >= 80, before <= 60"
grep -Eq "^part 1 answers' ROUGE-L vs truth \(mean\) +[0-9.]+ +[0-9.]+$" out.txt || fail "part 1 ROUGE-L row"
[ -f "$R/recipe/final/adapter_model.safetensors" ] && [ -f "$R/stories/final/adapter_model.safetensors" ] ||
  fail "adapters not written"
grep -q '\*\*\*\*\* train metrics \*\*\*\*\*' out.txt || fail "end-of-run summary"

# The learning, measured here.
python3 - "$R" <<'PY' || fail "part 2 did not show the learning it claims"
import json, sys
runs = sys.argv[1]
def lcs(a, b):
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b):
            cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]
def rouge_l(cand, ref):  # character-level ROUGE-L F1
    l = lcs(cand, ref)
    return 0.0 if l == 0 else 2 * l / (len(cand) + len(ref))
cs = json.load(open(f"{runs}/stories/continuations.json"))
opening, held = cs[0], cs[1]
assert opening["prompt"] == "Once upon a time, there was a little", opening
# What every trained story says after the opening (tests/data/demo/zuzu_stories.jsonl).
ref = " dragon named Zuzu. Zuzu liked to bake cakes for her friends. One day, Zuzu baked a big"
def score(text):
    n = min(len(text), len(ref))
    return rouge_l(text[:n].strip(), ref[:n].strip()) if n else 0.0
before, after = score(opening["before"]), score(opening["after"])
print(f"ROUGE-L (chars) of the opening's continuation vs the trained text: before {before:.3f}, after {after:.3f}")
assert after >= 0.8, after
assert before <= 0.6, before
print("held-out sentence:", held["prompt"], "| before:", held["before"][:40], "| after:", held["after"][:40])
assert "Zuzu" in held["after"] and "Zuzu" not in held["before"], held
rows = [json.loads(l) for l in open(f"{runs}/stories/metrics.jsonl")]
loss = [r["loss"] for r in rows if "loss" in r]
ev = [r["eval_loss"] for r in rows if "eval_loss" in r]
print(f"training loss {loss[0]} -> {loss[-1]}, held-out loss {ev[0]} -> {ev[-1]}")
assert loss[-1] <= 0.5 * loss[0] and ev[-1] <= 0.5 * ev[0], (loss, ev)
PY

# Every printed next-step command, run as printed.
gen=$(sed -n 's/^  try part 2: *//p' out.txt)
eval "$gen" > gen.txt 2>&1 || { cat gen.txt; fail "printed generate command failed: $gen"; }
grep -q Zuzu gen.txt || { cat gen.txt; fail "the printed generate command does not show the learned name"; }
chat=$(sed -n 's/^  chat (part 1): *//p' out.txt)
echo "/exit" | eval "$chat" > chat.txt 2>&1 || { cat chat.txt; fail "printed chat command failed: $chat"; }
dash=$(sed -n 's/^  watch the runs: *\(.*\)   (then open.*/\1/p' out.txt)
eval "$dash" > dash.txt 2>&1 &
DASH=$!
ok=""
for _ in $(seq 1 100); do
  if curl -sf http://127.0.0.1:7860/api/runs 2>/dev/null | grep -q '"stories"'; then ok=served; break; fi
  if ! kill -0 $DASH 2>/dev/null; then grep -q 7860 dash.txt && ok=busy; break; fi  # another test holds 7860
  sleep 0.1
done
[ -n "$ok" ] || { cat dash.txt; fail "printed dashboard command: $dash"; }
echo "dashboard command: $ok"
kill $DASH 2>/dev/null || true; wait $DASH 2>/dev/null || true; DASH=""

# Deterministic creation: the same seed gives the same weights.
sum1=$(cksum < "$M/model.safetensors")
rm -rf "$M" && "$BIN" demo --max_steps 1 --train_range 3:5 --num_samples 0 > /dev/null 2>&1 || fail "second demo"
[ "$(cksum < "$M/model.safetensors")" = "$sum1" ] || fail "demo model is not deterministic"

# Unwritable places: one line naming the folder and how to choose another.
if "$BIN" demo --output_dir /proc/lorafit-demo > bad.txt 2>&1; then fail "demo wrote to /proc?"; fi
[ "$(wc -l < bad.txt)" = 1 ] && grep -q 'needs to write to /proc/lorafit-demo .*pass --output_dir DIR' bad.txt ||
  { cat bad.txt; fail "unwritable runs folder message"; }
if XDG_CACHE_HOME=/proc/nocache "$BIN" demo > bad.txt 2>&1; then fail "demo with an unwritable cache"; fi
[ "$(wc -l < bad.txt)" = 1 ] && grep -q 'needs to write to /proc/nocache/lorafit .*set XDG_CACHE_HOME' bad.txt ||
  { cat bad.txt; fail "unwritable cache message"; }
echo PASS
