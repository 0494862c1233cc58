#!/usr/bin/env bash
# lorafit serve streams Chinese text without splitting a UTF-8 character: a tiny random Qwen2
# model (written here, python3 standard library) over the official Qwen2.5 tokenizer
# (tests/data/qwen-tokenizer), sampled with fixed seeds so the output wanders over the whole
# vocabulary, byte-level tokens that hold only part of a character included. Checks
# (serve_utf8_check.py): every streamed delta is whole characters (no U+FFFD beyond those the
# full answer has), the deltas join to the non-streamed text, and the run did contain tokens
# that split a character (from the tokens' raw bytes in logprobs).
# Usage: bash serve_utf8.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
LORAFIT=$1
ROOT=$(cd "$2" && pwd)
TMP=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

MODEL=$TMP/qwen-tiny
mkdir "$MODEL"
cp "$ROOT"/tests/data/qwen-tokenizer/qwen2.5/tokenizer.json "$ROOT"/tests/data/qwen-tokenizer/qwen2.5/tokenizer_config.json "$MODEL/"
python3 - "$MODEL" <<'PY'
import json, random, struct, sys
d = sys.argv[1]
V, C, F, H, KV, D = 151936, 16, 32, 2, 1, 8
json.dump({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": C, "intermediate_size": F,
           "num_hidden_layers": 1, "num_attention_heads": H, "num_key_value_heads": KV, "vocab_size": V,
           "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True,
           "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu",
           "use_sliding_window": False, "sliding_window": None, "max_window_layers": 1}, open(f"{d}/config.json", "w"))
rng = random.Random(0)
def bf16(n, ones=False):  # n values: 1.0, or random sign · [1, 2) · 2^-2 (bf16 exponent 0x7D)
    if ones:
        return b"\x80\x3f" * n
    lo = bytes(b | 0x80 for b in rng.randbytes(n))         # last exponent bit 1, random mantissa
    hi = bytes(0x3E | (b & 0x80) for b in rng.randbytes(n))  # random sign, exponent top bits
    out = bytearray(2 * n)
    out[0::2], out[1::2] = lo, hi
    return bytes(out)
shapes = {"model.embed_tokens.weight": [V, C], "model.norm.weight": [C],
          "model.layers.0.input_layernorm.weight": [C], "model.layers.0.post_attention_layernorm.weight": [C],
          "model.layers.0.self_attn.q_proj.weight": [H * D, C], "model.layers.0.self_attn.q_proj.bias": [H * D],
          "model.layers.0.self_attn.k_proj.weight": [KV * D, C], "model.layers.0.self_attn.k_proj.bias": [KV * D],
          "model.layers.0.self_attn.v_proj.weight": [KV * D, C], "model.layers.0.self_attn.v_proj.bias": [KV * D],
          "model.layers.0.self_attn.o_proj.weight": [C, H * D], "model.layers.0.mlp.gate_proj.weight": [F, C],
          "model.layers.0.mlp.up_proj.weight": [F, C], "model.layers.0.mlp.down_proj.weight": [C, F]}
header, blobs, off = {}, [], 0
for name, shape in shapes.items():
    n = 1
    for s in shape:
        n *= s
    b = bf16(n, ones=name.endswith("norm.weight") or name.endswith("layernorm.weight"))
    header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(f"{d}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY

"$LORAFIT" serve --model "$MODEL" --served-model-name qwen --port 0 --max-batch 4 >"$TMP/serve.out" 2>"$TMP/serve.err" &
PID=$!
for _ in $(seq 300); do grep -q "^lorafit serve:.*http" "$TMP/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^lorafit serve: OpenAI-compatible API at \(http[^ ]*\)v1 .*/\1/p' "$TMP/serve.out")
[ -n "$URL" ] || { cat "$TMP/serve.out" "$TMP/serve.err" >&2; fail "no URL printed"; }
python3 "$ROOT/tests/cli/serve_utf8_check.py" "$URL" || { tail -5 "$TMP/serve.err" >&2; fail "serve_utf8_check.py"; }
kill -0 "$PID" || fail "the server died"
echo "serve_utf8: all checks passed"
