#!/usr/bin/env bash
# lorafit merge end to end: the PEFT fixture adapters merged into their bases give folders
# that load and generate as the unmerged adapter does (f32 base: the same greedy ids); the
# sharded form (index + shards) when a small --max_shard_size is given; tokenizer and config
# files copied; refusals for an existing output and a broken adapter.
# Usage: bash merge.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
LORAFIT=$1
ROOT=$2
MODEL=$ROOT/tests/data/stories260K
ADAPTER=$ROOT/tests/fixtures/adapter/stories260K-qv-rslora
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$LORAFIT" merge --adapter "$ADAPTER" --output "$TMP/merged" >"$TMP/log"
grep -q "^merged 10 adapted modules" "$TMP/log" || fail "log: $(cat "$TMP/log")"
for f in model.safetensors config.json tokenizer.json tokenizer_config.json; do
  [ -f "$TMP/merged/$f" ] || fail "missing $f"
done
[ ! -e "$TMP/merged.tmp" ] || fail "temporary folder left behind"
m=$("$LORAFIT" generate --model "$TMP/merged" --input_ids 1,403,407 --max_new_tokens 12 --json)
u=$("$LORAFIT" generate --adapter "$ADAPTER" --input_ids 1,403,407 --max_new_tokens 12 --json)
[ "$m" = "$u" ] || fail "merged $m vs unmerged $u"

# Sharded: 100KB shards of a 1 MB model.
"$LORAFIT" merge --model "$MODEL" --adapter "$ADAPTER" --output "$TMP/sharded" --max_shard_size 100KB >/dev/null
[ -f "$TMP/sharded/model.safetensors.index.json" ] || fail "no index"
ls "$TMP/sharded" | grep -Eq '^model-00001-of-000[0-9]{2}\.safetensors$' || fail "shard names: $(ls "$TMP/sharded")"
s=$("$LORAFIT" generate --model "$TMP/sharded" --input_ids 1,403,407 --max_new_tokens 12 --json)
[ "$s" = "$m" ] || fail "sharded $s vs $m"

expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1
  shift
  if "$LORAFIT" merge "$@" >"$TMP/out" 2>"$TMP/err"; then fail "exit 0 for: $*"; fi
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "not one line for $*: $(cat "$TMP/err")"
  grep -q "^lorafit: error: .*$pattern" "$TMP/err" || fail "for $*: $(cat "$TMP/err") lacks '$pattern'"
}
expect_error "already exists" --adapter "$ADAPTER" --output "$TMP/merged"
mkdir "$TMP/noweights"
cp "$ADAPTER/adapter_config.json" "$TMP/noweights/"
expect_error "no adapter_model.safetensors" --model "$MODEL" --adapter "$TMP/noweights" --output "$TMP/x"
expect_error "has shape \[4, 96\], expected \[4, 64\]" --model "$MODEL" \
  --adapter "$ROOT/tests/fixtures/adapter/qwen2-untied-bf16-all" --output "$TMP/y"
expect_error '--max_shard_size "lots"' --adapter "$ADAPTER" --output "$TMP/z" --max_shard_size lots
[ ! -e "$TMP/x" ] && [ ! -e "$TMP/y" ] && [ ! -e "$TMP/x.tmp" ] || fail "failed merges left folders"
echo "merge.sh: ok"
