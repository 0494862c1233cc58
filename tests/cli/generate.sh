#!/usr/bin/env bash
# lorafit generate end to end on stories260K: the exact --json form, greedy ids equal to
# transformers' generate (tests/fixtures/forward/greedy.json, first case: BOS alone), the
# same seed giving the same sample, adapters unmerged and merged at load giving the same
# ids, and bad input (one-line error naming the problem, non-zero exit).
# Usage: bash generate.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
LORAFIT=$1
ROOT=$2
MODEL=$ROOT/tests/data/stories260K
ADAPTER=$ROOT/tests/fixtures/adapter/stories260K-qv-rslora
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Greedy from BOS = transformers' 20 ids, in exactly {"output_ids": [...], "text": "..."}.
want=$(awk '/"new_ids": \[/ {on=1; next} on && /\]/ {exit} on {gsub(/[ ,]/, ""); printf "%s%s", sep, $0; sep=", "}' \
  "$ROOT/tests/fixtures/forward/greedy.json")
[ -n "$want" ] || fail "could not read greedy.json"
out=$("$LORAFIT" generate --model "$MODEL" --input_ids 1 --max_new_tokens 20 --do_sample false --json)
[ "$out" = "{\"output_ids\": [$want], \"text\": \"Once upon a time, there was a little girl named Lily. She loved to play\"}" ] \
  || fail "greedy JSON: $out"

# 2. Text prompt (raw: stories260K has no chat template) streams the continuation only; BOS +
#    "Once upon a time" = greedy.json's second prompt, whose first 11 new ids read so.
out=$("$LORAFIT" generate --model "$MODEL" --prompt "Once upon a time" --raw --max_new_tokens 11 --do_sample false)
[ "$out" = ", there was a little girl named Lily." ] || fail "raw prompt: '$out'"

# 3. A fixed seed reproduces a sampled generation.
a=$("$LORAFIT" generate --model "$MODEL" --input_ids 1 --do_sample true --temperature 1 --seed 7 --json)
b=$("$LORAFIT" generate --model "$MODEL" --input_ids 1 --do_sample true --temperature 1 --seed 7 --json)
[ "$a" = "$b" ] || fail "seed 7 twice: $a vs $b"

# 4. The adapter alone (base from adapter_config.json), unmerged vs merged at load: same ids,
#    and not the base model's.
u=$("$LORAFIT" generate --adapter "$ADAPTER" --input_ids 1,403,407 --max_new_tokens 8 --json)
m=$("$LORAFIT" generate --adapter "$ADAPTER" --merge --input_ids 1,403,407 --max_new_tokens 8 --json)
base=$("$LORAFIT" generate --model "$MODEL" --input_ids 1,403,407 --max_new_tokens 8 --json)
[ "$u" = "$m" ] || fail "unmerged $u vs merged $m"
[ "$u" != "$base" ] || fail "the adapter changed nothing: $u"

# 5. --messages with --raw: contents concatenated.
echo '[{"role": "user", "content": "Once upon a time"}]' >"$TMP/m.json"
out=$("$LORAFIT" generate --model "$MODEL" --messages "$TMP/m.json" --raw --max_new_tokens 11 --json)
echo "$out" | grep -q '"text": ", there was a little girl named Lily."}' || fail "messages: $out"

# 6. Bad input.
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1
  shift
  if "$LORAFIT" generate "$@" >"$TMP/out" 2>"$TMP/err"; then fail "exit 0 for: $*"; fi
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "not one line for $*: $(cat "$TMP/err")"
  grep -q "^lorafit: error: .*$pattern" "$TMP/err" || fail "for $*: $(cat "$TMP/err") lacks '$pattern'"
}
expect_error "has no chat_template, so a conversation cannot be rendered; use --raw" --model "$MODEL" --prompt hi
echo '[]' >"$TMP/empty.json"
expect_error "the message list is empty" --model "$MODEL" --messages "$TMP/empty.json" --raw
echo '[{"role": "wizard", "content": "hi"}]' >"$TMP/role.json"
expect_error 'message 1 has the unknown role "wizard"' --model "$MODEL" --messages "$TMP/role.json" --raw
long=$(seq -s, 1 600 | sed 's/[0-9]\+/5/g')
expect_error "the prompt has 600 tokens, but the model's context is 512" --model "$MODEL" --input_ids "$long"
expect_error "exactly one of --prompt" --model "$MODEL"
expect_error "no adapter_config.json" --adapter "$TMP" --input_ids 1
mkdir "$TMP/noweights"
cp "$ADAPTER/adapter_config.json" "$TMP/noweights/"
expect_error "no adapter_model.safetensors" --model "$MODEL" --adapter "$TMP/noweights" --input_ids 1
expect_error "has shape \[4, 96\], expected \[4, 64\]" --model "$MODEL" \
  --adapter "$ROOT/tests/fixtures/adapter/qwen2-untied-bf16-all" --input_ids 1
expect_error '--do_sample: "maybe" is not a boolean; write true or false' --model "$MODEL" --input_ids 1 --do_sample maybe
expect_error "temperature" --model "$MODEL" --input_ids 1 --do_sample true --temperature 0
echo "generate.sh: ok"
