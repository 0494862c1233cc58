"""Build the tiny random Qwen2/Llama models used by the golden fixtures.

Writes tests/fixtures/models/<name>/{config.json, model.safetensors} for every entry of
MODELS below (HF folders that transformers 4.46 loads as they are).

Regenerate (from the repository root):
    /opt/gv/bin/python tools/golden/make_models.py
or  python3 -m venv .venv && .venv/bin/pip install -r tools/golden/requirements.txt
    && .venv/bin/python tools/golden/make_models.py

Weights are re-drawn after from_config with std large enough that every layer changes the
residual stream visibly (the HF init of std 0.02 and unit norms would make layers nearly
identity maps and hide bugs): embeddings N(0, 0.25), linear weights N(0, 0.07), q/k/v biases
N(0, 0.05) (from_config leaves them zero), RMSNorm weights 1 + N(0, 0.2).

Note on head_dim: transformers 4.46.3 Qwen2Attention ignores config.head_dim (it uses
hidden_size // num_heads and raises unless that divides), while its rotary embedding does
read config.head_dim. An explicit head_dim != hidden/heads is therefore only runnable for
Llama in 4.46, so the "explicit head_dim" case is the Llama model llama-headdim-bf16, and the
Qwen2 bf16 case (qwen2-untied-bf16) uses the implicit head_dim.
"""
import os
import shutil
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "models")

# name -> (family, dtype, seed, config kwargs)
MODELS = {
    "qwen2-mha-tied-f32": ("qwen2", torch.float32, 101, dict(
        vocab_size=517, hidden_size=72, intermediate_size=136, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=6, tie_word_embeddings=True)),
    "qwen2-gqa7-untied-f32": ("qwen2", torch.float32, 102, dict(
        vocab_size=613, hidden_size=56, intermediate_size=200, num_hidden_layers=3,
        num_attention_heads=7, num_key_value_heads=1, tie_word_embeddings=False)),
    "qwen2-untied-bf16": ("qwen2", torch.bfloat16, 103, dict(
        vocab_size=389, hidden_size=96, intermediate_size=136, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=False)),
    "llama-headdim-bf16": ("llama", torch.bfloat16, 104, dict(
        vocab_size=421, hidden_size=96, intermediate_size=200, num_hidden_layers=2,
        num_attention_heads=5, num_key_value_heads=1, head_dim=12, tie_word_embeddings=False,
        rope_theta=10000.0, rms_norm_eps=1e-6)),
    "llama-gqa2-f32": ("llama", torch.float32, 105, dict(
        vocab_size=701, hidden_size=56, intermediate_size=136, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
        rope_theta=10000.0, rms_norm_eps=1e-5)),
    "llama-tied-bf16": ("llama", torch.bfloat16, 106, dict(
        vocab_size=311, hidden_size=72, intermediate_size=200, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=3, tie_word_embeddings=True,
        rope_theta=10000.0, rms_norm_eps=1e-6)),
}

COMMON = dict(max_position_embeddings=256, bos_token_id=1, eos_token_id=2, hidden_act="silu",
              attention_dropout=0.0, initializer_range=0.02)


def build(name):
    family, dtype, seed, kw = MODELS[name]
    torch.manual_seed(seed)
    args = dict(COMMON)
    args.update(kw)
    if family == "qwen2":
        args.setdefault("rope_theta", 1e6)
        args.setdefault("rms_norm_eps", 1e-6)
        args.update(use_sliding_window=False, max_window_layers=args["num_hidden_layers"])
        cfg = Qwen2Config(**args)
        model = Qwen2ForCausalLM(cfg)
    else:
        args.update(attention_bias=False, mlp_bias=False)
        cfg = LlamaConfig(**args)
        model = LlamaForCausalLM(cfg)
    return randomize_and_save(model, cfg, dtype, seed, name)


def randomize_and_save(model, cfg, dtype, seed, name):
    """Re-draws every weight (see the module docstring) and saves the HF folder `name`."""
    gen = torch.Generator().manual_seed(seed * 7919)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("embed_tokens.weight"):
                p.copy_(0.25 * torch.randn(p.shape, generator=gen))
            elif pname.endswith(".bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:  # linear weights, including an untied lm_head
                p.copy_(0.07 * torch.randn(p.shape, generator=gen))
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model = model.to(dtype)
    out = os.path.join(OUT_DIR, name)
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    gc = os.path.join(out, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)  # bos/eos are in config.json; nothing else is needed
    return out


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    names = sys.argv[1:] or list(MODELS)
    for name in names:
        out = build(name)
        size = os.path.getsize(os.path.join(out, "model.safetensors"))
        print(f"{name}: {out} ({size} bytes)")


if __name__ == "__main__":
    main()
