#!/bin/bash
# lorafit tokenize end to end: the exact `--json` form scripts rely on, --pieces, --count,
# and a clear error for a missing tokenizer. Expected ids are from HF tokenizers 0.20.3.
# Usage: tokenize.sh /path/to/lorafit /path/to/source-root
set -u
LF="$1"
ROOT="$2"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf 'Hello 世界<|im_end|>' > "$TMP/t.txt"
out=$("$LF" tokenize --tokenizer "$ROOT/tests/data/qwen-tokenizer/qwen2.5" --file "$TMP/t.txt" --json) || fail "qwen --json exit $?"
[ "$out" = "[9707,220,99489,151645]" ] || fail "qwen --json printed '$out'"

out=$("$LF" tokenize --tokenizer "$ROOT/tests/data/qwen-tokenizer/qwen2.5" --file "$TMP/t.txt" --json --no-parse-special) || fail "no-parse-special"
[ "$out" = "[9707,220,99489,27,91,318,6213,91,29]" ] || fail "qwen --no-parse-special printed '$out'"

out=$("$LF" tokenize --tokenizer "$ROOT/tests/data/stories260K" --text "Once upon a time, there was a little girl named Lily." --json --add-special-tokens) || fail "stories"
[ "$out" = "[1,403,407,261,378,432,383,286,261,376,298,315,421,395,317,426]" ] || fail "stories printed '$out'"

out=$("$LF" tokenize --tokenizer "$ROOT/tests/data/stories260K" --text "Once upon" --pieces) || fail "pieces"
[ "$out" = $'403\t"▁Once"\n407\t"▁upon"' ] || fail "--pieces printed '$out'"

out=$("$LF" tokenize --tokenizer "$ROOT/tests/data/qwen-tokenizer/qwen2.5" --count "$ROOT/tests/data/disc-law/disc_law_eval_sft.jsonl" --json) || fail "count"
echo "$out" | grep -q '"records":2863' || fail "--count printed '$out'"
echo "$out" | grep -q '"total_tokens":372245' || fail "--count total: '$out'"

# --chat: every golden Qwen2.5/Qwen3 chat rendering (transformers.js, see
# tests/data/tokenizer-golden/README.md) gives the same ids through the folder's own template.
python3 - "$ROOT" "$TMP" <<'PY' || fail "could not write chat cases"
import json, sys
root, tmp = sys.argv[1], sys.argv[2]
d = json.load(open(f"{root}/tests/data/tokenizer-golden/qwen_golden_ids.json", encoding="utf-8"))
with open(f"{tmp}/chat_cases.txt", "w") as idx:
    for fam, folder in (("qwen2_5", "qwen2.5"), ("qwen3", "qwen3")):
        for k, case in enumerate(d["chat_template"][fam]):
            name = f"{tmp}/chat_{fam}_{k}.json"
            json.dump(case["messages"], open(name, "w", encoding="utf-8"), ensure_ascii=False)
            ids = "[" + ",".join(map(str, case["ids"])) + "]"
            var = "enable_thinking=" + str(case["enable_thinking"]).lower() if "enable_thinking" in case else "-"
            idx.write(f"{folder} {name} {int(case['add_generation_prompt'])} {var} {ids}\n")
PY
n=0
while read -r folder file gen var ids; do
  flag=""; [ "$gen" = 1 ] && flag="--add-generation-prompt"
  [ "$var" != "-" ] && flag="$flag --template-var $var"
  out=$("$LF" tokenize --tokenizer "$ROOT/tests/data/qwen-tokenizer/$folder" --chat "$file" $flag --json) || fail "--chat $file exit $?"
  [ "$out" = "$ids" ] || fail "--chat $file printed '$out', expected '$ids'"
  n=$((n + 1))
done < "$TMP/chat_cases.txt"
[ "$n" -eq 5 ] || fail "expected 5 chat cases, ran $n"
echo '[]' > "$TMP/empty.json"
err=$("$LF" tokenize --tokenizer "$ROOT/tests/data/qwen-tokenizer/qwen2.5" --chat "$TMP/empty.json" 2>&1) && fail "empty chat exited 0"
echo "$err" | grep -q "no messages to render" || fail "empty chat error: $err"

err=$("$LF" tokenize --tokenizer "$TMP/nothing" --text x 2>&1) && fail "missing tokenizer exited 0"
echo "$err" | grep -q "nothing" || fail "error does not name the path: $err"
echo PASS
