#!/usr/bin/env bash
# lorafit export end to end against llama.cpp's own converters:
#  - --format gguf of each fixture model (tests/fixtures/export/models) for every --outtype
#    gives the keys (names, types, values, order) and tensors (names, dims, types, sha256 of
#    the data) that convert_hf_to_gguf.py wrote for the same folder (tests/fixtures/export/ref,
#    tools/golden/make_export_fixtures.py): q/k permutation, f16/bf16 rounding and the Q8_0
#    reference quantizer are checked bit for bit;
#  - --adapter: the tensors equal those of exporting the folder `lorafit merge` writes (the
#    merged weights; the merge itself is checked against PEFT in merge.sh/test_generate_adapter);
#  - --format gguf-lora equals convert_lora_to_gguf.py's file (rsLoRA alpha: see the ref note);
#  - the Ollama Modelfile (FROM, TEMPLATE, stops, SYSTEM of the run);
#  - refusals before anything is written: unknown outtype/format, a family or pre-tokenizer
#    llama.cpp cannot run, an existing output (unless --overwrite); a failing write (file size
#    limit, as a full disk) leaves no file.
# Usage: bash export.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
LORAFIT=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/export
CMP="python3 $ROOT/tests/tools/gguf_compare.py"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

assemble() {  # assemble NAME -> $TMP/models/NAME (qwen2-tok gets the Qwen2.5 tokenizer files)
  mkdir -p "$TMP/models"
  cp -r "$FIX/models/$1" "$TMP/models/"
  if [ "$1" = qwen2-tok ]; then
    cp "$ROOT/tests/data/qwen-tokenizer/qwen2.5/tokenizer.json" "$ROOT/tests/data/qwen-tokenizer/qwen2.5/tokenizer_config.json" \
      "$TMP/models/qwen2-tok/"
  fi
}

for name in qwen2-tok llama-spm mistral-spm; do
  assemble $name
  M=$TMP/models/$name
  for t in f32 f16 bf16 q8_0; do
    mkdir -p "$TMP/out/$name.$t"
    "$LORAFIT" export --model "$M" --format gguf --outtype $t --output "$TMP/out/$name.$t/model.gguf" >"$TMP/log" 2>&1 ||
      fail "export $name $t: $(cat "$TMP/log")"
    $CMP ref "$FIX/ref/$name.$t.json" "$TMP/out/$name.$t/model.gguf" || fail "$name $t differs from convert_hf_to_gguf.py"
  done
  # With the adapter: the same tensors as exporting the merged folder.
  A=$TMP/adapters/$name
  mkdir -p "$TMP/adapters"
  cp -r "$FIX/adapters/$name" "$A"
  "$LORAFIT" merge --model "$M" --adapter "$A" --output "$TMP/merged-$name" >/dev/null
  for t in f32; do  # f32: any difference in the merged weights shows in the bytes
    "$LORAFIT" export --model "$M" --adapter "$A" --outtype $t --output "$TMP/out/$name.lora-merged.$t.gguf" \
      --modelfile false >"$TMP/log" 2>&1 || fail "export --adapter $name: $(cat "$TMP/log")"
    grep -q "adapted modules merged" "$TMP/log" || fail "log: $(cat "$TMP/log")"
    "$LORAFIT" export --model "$TMP/merged-$name" --outtype $t --output "$TMP/out/$name.merged.$t.gguf" \
      --modelfile false >/dev/null
    $CMP tensors "$TMP/out/$name.merged.$t.gguf" "$TMP/out/$name.lora-merged.$t.gguf" || fail "$name --adapter $t"
    if $CMP tensors "$TMP/out/$name.$t/model.gguf" "$TMP/out/$name.lora-merged.$t.gguf" >/dev/null; then
      fail "$name: the adapter changed nothing"
    fi
  done
  for t in f32 q8_0; do
    "$LORAFIT" export --model "$M" --adapter "$A" --format gguf-lora --outtype $t --output "$TMP/out/$name.lora.$t.gguf" \
      >/dev/null
    $CMP ref "$FIX/ref/$name.lora.$t.json" "$TMP/out/$name.lora.$t.gguf" || fail "$name lora $t differs from convert_lora_to_gguf.py"
  done
done

# Modelfile beside the Qwen2.5 export: ChatML Go template with the template's default system,
# both stop tokens (tokenizer eos <|im_end|>; <|endoftext|> is the pad/bos here).
MF=$TMP/out/qwen2-tok.f16/Modelfile
[ -f "$MF" ] || fail "no Modelfile"
grep -qx 'FROM ./model.gguf' "$MF" || fail "FROM: $(cat "$MF")"
grep -qx 'PARAMETER stop "<|im_end|>"' "$MF" || fail "stop: $(cat "$MF")"
python3 - "$MF" <<'PY' || fail "TEMPLATE: $(cat "$MF")"
import sys
text = open(sys.argv[1], encoding="utf-8").read()
want = ('TEMPLATE """{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ else }}<|im_start|>system\n'
        'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n{{ end }}'
        '{{ range .Messages }}{{ if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n<|im_start|>assistant\n'
        '{{ else if eq .Role "assistant" }}{{ .Content }}<|im_end|>\n{{ end }}{{ end }}"""\n')
sys.exit(0 if want in text else 1)
PY
# Mistral v0.1's template refuses a system message: no system branch; BOS text dropped
# (add_bos_token: llama.cpp adds it).
MF=$TMP/out/llama-spm.f16/Modelfile
grep -qF 'TEMPLATE """{{ range .Messages }}{{ if eq .Role "user" }}[INST] {{ .Content }} [/INST]{{ else if eq .Role "assistant" }}{{ .Content }}</s> {{ end }}{{ end }}"""' "$MF" ||
  fail "mistral TEMPLATE: $(cat "$MF")"
grep -qx 'PARAMETER stop "</s>"' "$MF" || fail "mistral stop: $(cat "$MF")"
# SYSTEM: the system prompt of the run the adapter comes from (run folder config.json).
RUN=$TMP/run
mkdir -p "$RUN"
cp -r "$FIX/adapters/qwen2-tok" "$RUN/final"
sed -i "s|\"base_model_name_or_path\": \"[^\"]*\"|\"base_model_name_or_path\": \"$TMP/models/qwen2-tok\"|" "$RUN/final/adapter_config.json"
echo 'system: 你是一个法律专家' >"$RUN/config.yaml"
echo '{"system": "你是一个法律专家"}' >"$RUN/config.json"
mkdir -p "$TMP/sys"
"$LORAFIT" export --adapter "$RUN/final" --output "$TMP/sys/m.gguf" >/dev/null
grep -qx 'SYSTEM """你是一个法律专家"""' "$TMP/sys/Modelfile" || fail "SYSTEM: $(cat "$TMP/sys/Modelfile")"

expect_error() {  # expect_error PATTERN ARGS...  (one-line error, no output file)
  local pattern=$1
  shift
  rm -f "$TMP/bad.gguf"
  if "$LORAFIT" export "$@" >"$TMP/o" 2>"$TMP/err"; then fail "exit 0 for: $*"; fi
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "not one line for $*: $(cat "$TMP/err")"
  grep -q "^lorafit: error: .*$pattern" "$TMP/err" || fail "for $*: $(cat "$TMP/err") lacks '$pattern'"
  [ ! -e "$TMP/bad.gguf" ] || fail "output written for $*"
  ! ls "$TMP" | grep -q 'bad.gguf.tmp' || fail "temporary file left for $*"
}
Q=$TMP/models/qwen2-tok
expect_error "--outtype q4_0: not implemented; choose f32, f16, bf16 or q8_0" --model "$Q" --outtype q4_0 --output "$TMP/bad.gguf"
expect_error "--format onnx: not implemented" --model "$Q" --format onnx --output "$TMP/bad.gguf"
expect_error "pre-tokenizer is not one llama.cpp knows" --model "$ROOT/tests/data/stories260K" --output "$TMP/bad.gguf"
expect_error "no tokenizer.json" --model "$ROOT/tests/fixtures/models/qwen2-untied-bf16" --output "$TMP/bad.gguf"
expect_error "gguf-lora needs --adapter" --model "$Q" --format gguf-lora --output "$TMP/bad.gguf"
cp -r "$Q" "$TMP/qwen3ish"
sed -i 's/"model_type": "qwen2"/"model_type": "gemma"/' "$TMP/qwen3ish/config.json"
expect_error "config.json" --model "$TMP/qwen3ish" --output "$TMP/bad.gguf"
cp -r "$TMP/models/llama-spm" "$TMP/spm-model"
touch "$TMP/spm-model/tokenizer.model"
expect_error "tokenizer.model" --model "$TMP/spm-model" --output "$TMP/bad.gguf"
echo keep >"$TMP/bad.gguf.keep"
cp "$TMP/bad.gguf.keep" "$TMP/exists.gguf"
if "$LORAFIT" export --model "$Q" --output "$TMP/exists.gguf" 2>"$TMP/err"; then fail "existing output overwritten"; fi
grep -q "already exists; give --overwrite" "$TMP/err" || fail "$(cat "$TMP/err")"
cmp -s "$TMP/exists.gguf" "$TMP/bad.gguf.keep" || fail "existing output changed"
"$LORAFIT" export --model "$Q" --output "$TMP/exists.gguf" --overwrite --modelfile false >/dev/null
# (default --outtype: auto as the converter's, bf16 for this bf16 model, f16 for an f32 one)
$CMP ref "$FIX/ref/qwen2-tok.bf16.json" "$TMP/exists.gguf" >/dev/null || fail "--overwrite output / auto outtype"
"$LORAFIT" export --model "$TMP/models/llama-spm" --output "$TMP/auto.gguf" --modelfile false >/dev/null
$CMP ref "$FIX/ref/llama-spm.f16.json" "$TMP/auto.gguf" >/dev/null || fail "auto outtype of an f32 model"
# A write that fails half way (file size limit 1 MB: EFBIG, as ENOSPC on a full disk).
mkdir -p "$TMP/full"
if (trap '' XFSZ; ulimit -f 1024; "$LORAFIT" export --model "$Q" --output "$TMP/full/m.gguf" --modelfile false) \
  >/dev/null 2>"$TMP/err"; then fail "export under a 1 MB file limit succeeded"; fi
grep -q "^lorafit: error: .*m.gguf" "$TMP/err" || fail "write error: $(cat "$TMP/err")"
[ -z "$(ls "$TMP/full")" ] || fail "partial files left: $(ls "$TMP/full")"
# A transformers-5 config.json (rope_theta and the llama3 rope inside rope_parameters, dtype)
# exports the same bytes as its transformers-4 spelling (rope.freq_base and rope_freqs).
for v in 4 5; do
  mkdir -p "$TMP/rope$v"  # the same folder name: it is general.name
  cp -r "$TMP/models/llama-spm" "$TMP/rope$v/"
  python3 - "$TMP/rope$v/llama-spm/config.json" $v <<'PY'
import json, sys
path, v = sys.argv[1], sys.argv[2]
c = json.load(open(path))
rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64}
del c["rope_scaling"], c["rope_theta"]
if v == "4":
    c.update(rope_theta=500000.0, rope_scaling=rope)
else:
    c["rope_parameters"] = dict(rope, rope_theta=500000.0)
    c["dtype"] = c.pop("torch_dtype")
json.dump(c, open(path, "w"), indent=2)
PY
  "$LORAFIT" export --model "$TMP/rope$v/llama-spm" --outtype f32 --output "$TMP/rope$v.gguf" --modelfile false >/dev/null ||
    fail "export rope$v"
done
cmp -s "$TMP/rope4.gguf" "$TMP/rope5.gguf" || fail "transformers-5 config exports differently from its transformers-4 spelling"
! cmp -s "$TMP/rope4.gguf" "$TMP/out/llama-spm.f32/model.gguf" || fail "the llama3 rope changed nothing in the GGUF"
echo "export: all checks passed"
