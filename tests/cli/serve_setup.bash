# Shared by serve.sh and serve_openai.sh (sourced; not a test itself: ctest runs *.sh only):
# the stories260K model given a one-line chat template, three adapters (the qv-rsLoRA fixture,
# a copy with lora_alpha doubled, a copy with its own tokenizer files and chat template), the
# reference answers from `lorafit generate`, and the server started on a free port with key "sekret". Sets LORAFIT ROOT TMP MODEL A1 A2 A4 PID URL.
# Usage: source serve_setup.bash /path/to/lorafit /path/to/source-root
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

# a4: a1's weights in a folder with its own tokenizer files and another chat template (what an
# adapter trained by lorafit carries): its chats render through that template, the others not.
A4=$TMP/a4
cp -r "$A1" "$A4"
cp "$ROOT"/tests/data/stories260K/tokenizer.json "$A4/"
python3 - "$MODEL/tokenizer_config.json" "$A4/tokenizer_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["chat_template"] = "Q: {% for m in messages %}{{ m['content'] }}{% endfor %}"
json.dump(c, open(sys.argv[2], "w"))
PY

# The reference answers, from `lorafit generate` (the same model, adapters and messages).
echo '[{"role": "user", "content": "Once upon a time"}]' >"$TMP/msgs.json"
for which in base a1 a2 a4; do
  case $which in base) extra=();; a1) extra=(--adapter "$A1");; a2) extra=(--adapter "$A2");; a4) extra=(--adapter "$A4");; esac
  "$LORAFIT" generate --model "$MODEL" "${extra[@]}" --messages "$TMP/msgs.json" --max_new_tokens 24 \
    --do_sample false --json >"$TMP/gen_$which.json"
done
"$LORAFIT" tokenize --tokenizer "$MODEL" --text "Once upon a time" --json >"$TMP/tok.json"

"$LORAFIT" serve --model "$MODEL" --served-model-name stories --lora-modules a1="$A1" a2="$A2" a4="$A4" --port 0 \
  --api-key sekret --max-batch 8 --max-body-bytes 65536 --enable-lora-loading >"$TMP/serve.out" 2>"$TMP/serve.err" &
PID=$!
for _ in $(seq 100); do grep -q "^lorafit serve:.*http" "$TMP/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^lorafit serve: OpenAI-compatible API at \(http[^ ]*\)v1 .*/\1/p' "$TMP/serve.out")
[ -n "$URL" ] || { cat "$TMP/serve.out" "$TMP/serve.err" >&2; fail "no URL printed"; }
grep -q "model a1 (LoRA adapter)" "$TMP/serve.out" || fail "adapters not listed: $(cat "$TMP/serve.out")"

