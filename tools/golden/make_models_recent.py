"""Tiny random models of the families issue 13 added: Qwen3 (q_norm/k_norm, explicit head_dim,
tied and untied), Llama with llama3 RoPE scaling, and Qwen2 with yarn RoPE. Needs a
transformers with Qwen3 (tools/golden/requirements-models.txt):

    /opt/models-venv/bin/python tools/golden/make_models_recent.py

Weights are re-drawn as tools/golden/make_models.py does (q_norm/k_norm get 1 + N(0, 0.2)
like every RMSNorm). The rope settings are chosen so the scaling matters at the fixtures'
short lengths: theta 100 and original_max_position_embeddings 64 put the head's
frequencies on both sides of llama3's wavelength thresholds (16 and 64) and of yarn's ramp.
"""
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import COMMON, randomize_and_save  # noqa: E402

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}
YARN = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}

# name -> (config class, model class, dtype, seed, config kwargs)
MODELS = {
    "qwen3-gqa-tied-f32": (Qwen3Config, Qwen3ForCausalLM, torch.float32, 111, dict(
        vocab_size=457, hidden_size=64, intermediate_size=136, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=24, tie_word_embeddings=True,
        rope_theta=1e6, rms_norm_eps=1e-6)),
    "qwen3-untied-bf16": (Qwen3Config, Qwen3ForCausalLM, torch.bfloat16, 112, dict(
        vocab_size=389, hidden_size=72, intermediate_size=120, num_hidden_layers=3,
        num_attention_heads=6, num_key_value_heads=3, head_dim=16, tie_word_embeddings=False,
        rope_theta=1e6, rms_norm_eps=1e-6)),
    "llama31-rope-f32": (LlamaConfig, LlamaForCausalLM, torch.float32, 113, dict(
        vocab_size=431, hidden_size=64, intermediate_size=136, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rope_theta=100.0, rms_norm_eps=1e-5,
        rope_scaling=LLAMA3, attention_bias=False, mlp_bias=False, tie_word_embeddings=False)),
    "qwen2-yarn-f32": (Qwen2Config, Qwen2ForCausalLM, torch.float32, 114, dict(
        vocab_size=401, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rope_theta=100.0, rms_norm_eps=1e-6,
        rope_scaling=YARN, tie_word_embeddings=False, use_sliding_window=False, max_window_layers=2)),
}


def build(name):
    cfg_cls, model_cls, dtype, seed, kw = MODELS[name]
    torch.manual_seed(seed)
    args = dict(COMMON)
    args.update(kw)
    cfg = cfg_cls(**args)
    model = model_cls(cfg)
    return randomize_and_save(model, cfg, dtype, seed, name)


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    for name in sys.argv[1:] or list(MODELS):
        out = build(name)
        print(f"{name}: {out} ({os.path.getsize(os.path.join(out, 'model.safetensors'))} bytes)")


if __name__ == "__main__":
    main()
