#!/usr/bin/env bash
# lorafit serve end to end on stories260K (given a one-line chat template) with two adapters:
# the rqv-rsLoRA fixture and a copy with lora_alpha doubled. Checks (tests/cli/serve_check.py):
# /v1/models; greedy chat for an adapter == `lorafit generate --adapter` for the same messages
# and != the base's; streamed == non-streamed; usage == the tokenizer's counts; stop strings and
# ids; OpenAI error shapes and codes (400/401/404/413/503); hostile requests answered 4xx while
# other clients are served; 32 concurrent streaming clients over base + 2 adapters, each equal
# to its sequential greedy answer; /health and /metrics.
# Usage: bash serve.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
LORAFIT=$1
ROOT=$(cd "$2" && pwd)
TMP=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# The model with a chat template (stories260K has none): every file linked, tokenizer_config
# rewritten with a small template.
MODEL=$TMP/stories-chat
mkdir "$MODEL"
for f in "$ROOT"/tests/data/stories260K/*; do ln -s "$f" "$MODEL/"; done
rm "$MODEL/tokenizer_config.json"
python3 - "$ROOT/tests/data/stories260K/tokenizer_config.json" "$MODEL/tokenizer_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% if not loop.last %} {% endif %}{% endfor %}"
json.dump(c, open(sys.argv[2], "w"))
PY
A1=$ROOT/tests/fixtures/adapter/stories260K-qv-rslora
A2=$TMP/a2
cp -r "$A1" "$A2"
python3 - "$A2/adapter_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["lora_alpha"] = 2 * c["lora_alpha"]; json.dump(c, open(sys.argv[1], "w"))
PY

# The reference answers, from `lorafit generate` (the same model, adapters and messages).
echo '[{"role": "user", "content": "Once upon a time"}]' >"$TMP/msgs.json"
for which in base a1 a2; do
  case $which in base) extra=();; a1) extra=(--adapter "$A1");; a2) extra=(--adapter "$A2");; esac
  "$LORAFIT" generate --model "$MODEL" "${extra[@]}" --messages "$TMP/msgs.json" --max_new_tokens 24 \
    --do_sample false --json >"$TMP/gen_$which.json"
done
"$LORAFIT" tokenize --tokenizer "$MODEL" --text "Once upon a time" --json >"$TMP/tok.json"

"$LORAFIT" serve --model "$MODEL" --served-model-name stories --lora-modules a1="$A1" a2="$A2" --port 0 \
  --api-key sekret --max-batch 8 --max-body-bytes 65536 --enable-lora-loading >"$TMP/serve.out" 2>"$TMP/serve.err" &
PID=$!
for _ in $(seq 100); do grep -q "^lorafit serve:.*http" "$TMP/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^lorafit serve: OpenAI-compatible API at \(http[^ ]*\)v1 .*/\1/p' "$TMP/serve.out")
[ -n "$URL" ] || { cat "$TMP/serve.out" "$TMP/serve.err" >&2; fail "no URL printed"; }
grep -q "model a1 (LoRA adapter)" "$TMP/serve.out" || fail "adapters not listed: $(cat "$TMP/serve.out")"

# curl: the error shape of a malformed body, 401 without the key, 413 for an oversize body.
code=$(curl -s -o "$TMP/r" -w '%{http_code}' -H 'Authorization: Bearer sekret' -H 'Content-Type: application/json' \
  -d '{"model": "stories", "messages": [' "${URL}v1/chat/completions")
[ "$code" = 400 ] || fail "malformed JSON: $code $(cat "$TMP/r")"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert set(e)=={"message","type","param","code"}, e' "$TMP/r" \
  || fail "error shape: $(cat "$TMP/r")"
code=$(curl -s -o "$TMP/r" -w '%{http_code}' "${URL}v1/models")
[ "$code" = 401 ] || fail "no key: $code"
head -c 70000 /dev/zero | tr '\0' 'a' >"$TMP/big"
code=$(curl -s -o "$TMP/r" -w '%{http_code}' -H 'Authorization: Bearer sekret' --data-binary @"$TMP/big" \
  "${URL}v1/completions")
[ "$code" = 413 ] || fail "oversize body: $code $(cat "$TMP/r")"
grep -q '"error"' "$TMP/r" || fail "413 without the error object: $(cat "$TMP/r")"
code=$(curl -s -o /dev/null -w '%{http_code}' "${URL}health")
[ "$code" = 200 ] || fail "health: $code"

python3 "$ROOT/tests/cli/serve_check.py" "$URL" sekret "$TMP" || { tail -5 "$TMP/serve.err" >&2; fail "serve_check.py"; }
kill -0 "$PID" || fail "the server died"
echo "serve: all checks passed"
