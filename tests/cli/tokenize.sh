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

err=$("$LF" tokenize --tokenizer "$TMP/nothing" --text x 2>&1) && fail "missing tokenizer exited 0"
echo "$err" | grep -q "nothing" || fail "error does not name the path: $err"
echo PASS
