#!/usr/bin/env bash
# lorafit serve end to end on stories260K (given a one-line chat template) with two adapters:
# the rqv-rsLoRA fixture and a copy with lora_alpha doubled. Checks (tests/cli/serve_check.py):
# /v1/models; greedy chat for an adapter == `lorafit generate --adapter` for the same messages
# and != the base's; streamed == non-streamed; usage == the tokenizer's counts; stop strings and
# ids; OpenAI error shapes and codes (400/401/404/413/503); hostile requests answered 4xx while
# other clients are served; 32 concurrent streaming clients over base + 2 adapters, each equal
# to its sequential greedy answer; /health and /metrics.
# Usage: bash serve.sh /path/to/lorafit /path/to/source-root
source "$(dirname "$0")/serve_setup.bash" "$@"

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
