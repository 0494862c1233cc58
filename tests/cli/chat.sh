#!/usr/bin/env bash
# lorafit chat driven through stdin on stories260K (no chat template, so --raw) and its PEFT
# fixture adapter: greedy answers equal to transformers' greedy continuation, /reset,
# /adapters and /adapter switching, `chat --adapter DIR` alone, and the refusal without --raw.
# Usage: bash chat.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
LORAFIT=$1
ROOT=$2
MODEL=$ROOT/tests/data/stories260K
ADAPTER=$ROOT/tests/fixtures/adapter/stories260K-qv-rslora
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Two conversations separated by /reset: each answer continues only its own text (greedy;
#    the first equals greedy.json's continuation of "Once upon a time").
printf 'Once upon a time\n/reset\nOnce upon a time\n/quit\nnot read\n' |
  "$LORAFIT" chat --model "$MODEL" --raw --do_sample false --max_new_tokens 11 >"$TMP/out"
printf '%s\n' ", there was a little girl named Lily." "[new conversation]" ", there was a little girl named Lily." |
  diff - "$TMP/out" || fail "reset conversation"

# 2. Multi-turn: the second turn sees the first answer (raw: texts concatenated).
printf 'Once upon a time\n She\n' | "$LORAFIT" chat --model "$MODEL" --raw --do_sample false --max_new_tokens 5 >"$TMP/out"
turn2=$(sed -n 2p "$TMP/out")
want=$("$LORAFIT" generate --model "$MODEL" --raw --prompt "Once upon a time, there was a little She" \
  --do_sample false --max_new_tokens 5)
[ "$turn2" = "$want" ] || fail "second turn '$turn2' vs generate '$want'"

# 3. `chat --adapter DIR` alone: the base model comes from adapter_config.json; switching.
printf '/adapters\nOnce\n/adapter base\n/reset\nOnce\n/adapter nope\n' |
  "$LORAFIT" chat --adapter "$ADAPTER" --raw --do_sample false --max_new_tokens 6 >"$TMP/out"
grep -qx "\[adapters: base, stories260K-qv-rslora; current: stories260K-qv-rslora\]" "$TMP/out" || fail "adapters: $(cat "$TMP/out")"
grep -qx "\[adapter: base\]" "$TMP/out" || fail "switch: $(cat "$TMP/out")"
grep -q '^\[error: unknown adapter "nope"; loaded: base, stories260K-qv-rslora\]$' "$TMP/out" || fail "unknown adapter"
with=$(sed -n 2p "$TMP/out")
without=$(sed -n 5p "$TMP/out")
base=$("$LORAFIT" generate --model "$MODEL" --raw --prompt "Once" --do_sample false --max_new_tokens 6)
[ "$without" = "$base" ] || fail "base answer '$without' vs '$base'"
[ "$with" != "$base" ] || fail "adapter answer equals the base one"

# 4. No chat template and no --raw: a clear refusal before reading anything.
if echo hi | "$LORAFIT" chat --model "$MODEL" >"$TMP/out" 2>"$TMP/err"; then fail "exit 0 without a template"; fi
grep -q "^lorafit: error: .*tokenizer_config.json has no chat_template.*use --raw" "$TMP/err" || fail "$(cat "$TMP/err")"
echo "chat.sh: ok"
