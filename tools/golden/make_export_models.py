"""Tiny random models WITH tokenizers for the GGUF export tests (tests/fixtures/export/).

The other fixture models (tests/fixtures/models) have no tokenizer, and llama.cpp's converter
needs one that it recognises. So:
  qwen2-tok     Qwen2ForCausalLM, bf16, tied, vocab 151936 with the real Qwen2.5 tokenizer
                (tests/data/qwen-tokenizer/qwen2.5, not copied here: tests/cli/export.sh puts
                tokenizer.json + tokenizer_config.json beside it). hidden 8 keeps it ~2.4 MB;
                so most rows are not a multiple of 32 and q8_0 falls back to f16 as llama.cpp
                does (down_proj, ffn 32, is quantized).
  llama-spm     LlamaForCausalLM, f32, untied, the stories260K SentencePiece-style tokenizer.json
                (byte fallback, vocab 512) and the Mistral-7B-Instruct-v0.1 chat template;
                hidden 64 so q8_0 quantizes; ffn 80 (not a multiple of 32: down_proj falls back).
  mistral-spm   MistralForCausalLM, bf16, tied, same tokenizer, GQA 4/1.
  qwen3-tok     Qwen3ForCausalLM (q/k norms), f32, Qwen3 tokenizer; only when transformers knows
                Qwen3 (not 4.46.3): skipped otherwise.
plus PEFT adapters (r 4, alpha 8; rsLoRA for mistral-spm; lora_B ~ N(0, 0.05²)) in
tests/fixtures/export/adapters/<model>/.

Regenerate (repository root): /opt/gv/bin/python tools/golden/make_export_models.py
"""
import json
import os
import shutil

import torch
from peft import LoraConfig, get_peft_model
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "export")
DATA = os.path.join(ROOT, "tests", "data")
STORIES = os.path.join(DATA, "stories260K")
MISTRAL_TEMPLATE = os.path.join(DATA, "chat-templates", "mistral-7b-instruct-v0.1.jinja")

COMMON = dict(max_position_embeddings=512, hidden_act="silu", attention_dropout=0.0, initializer_range=0.02)

MODELS = {
    "qwen2-tok": (Qwen2Config, Qwen2ForCausalLM, torch.bfloat16, 201, dict(
        vocab_size=151936, hidden_size=8, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, tie_word_embeddings=True, rope_theta=1e6, rms_norm_eps=1e-6,
        use_sliding_window=False, max_window_layers=2, bos_token_id=151643, eos_token_id=151645)),
    "llama-spm": (LlamaConfig, LlamaForCausalLM, torch.float32, 202, dict(
        vocab_size=512, hidden_size=64, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=False, rope_theta=10000.0, rms_norm_eps=1e-5,
        attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2)),
    "mistral-spm": (MistralConfig, MistralForCausalLM, torch.bfloat16, 203, dict(
        vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-5,
        sliding_window=None, bos_token_id=1, eos_token_id=2)),
}

ADAPTERS = {
    "qwen2-tok": dict(r=4, lora_alpha=8, target_modules="all-linear"),
    "llama-spm": dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"]),
    "mistral-spm": dict(r=4, lora_alpha=8, target_modules="all-linear", use_rslora=True),
}


def spm_tokenizer_files(out, template):
    shutil.copy(os.path.join(STORIES, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    with open(os.path.join(STORIES, "tokenizer_config.json")) as f:
        tc = json.load(f)
    with open(template) as f:
        tc["chat_template"] = f.read()
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2, ensure_ascii=False)


def build(name):
    cfg_cls, model_cls, dtype, seed, kw = MODELS[name]
    torch.manual_seed(seed)
    cfg = cfg_cls(**COMMON, **kw)
    model = model_cls(cfg)
    gen = torch.Generator().manual_seed(seed * 7919)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("embed_tokens.weight"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif pname.endswith(".bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_((0.5 / p.shape[1] ** 0.5) * torch.randn(p.shape, generator=gen))
    model = model.to(dtype)
    out = os.path.join(OUT, "models", name)
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    gc = os.path.join(out, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)
    if name.endswith("-spm"):
        spm_tokenizer_files(out, MISTRAL_TEMPLATE)
    return out


def make_adapter(name, base):
    full = os.path.join(OUT, "work", name)  # base + tokenizer, as the tests assemble it
    if os.path.isdir(full):
        shutil.rmtree(full)
    shutil.copytree(base, full)
    if name == "qwen2-tok":
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(DATA, "qwen-tokenizer", "qwen2.5", f), full)
    torch.manual_seed(300)
    model = AutoModelForCausalLM.from_pretrained(full, torch_dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", **ADAPTERS[name]))
    g = torch.Generator().manual_seed(301)
    with torch.no_grad():
        for pname, p in peft_model.named_parameters():
            if "lora_B" in pname:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    d = os.path.join(OUT, "adapters", name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    peft_model.save_pretrained(d)
    cfg_path = os.path.join(d, "adapter_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = os.path.relpath(base, d)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    readme = os.path.join(d, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    shutil.rmtree(full)


def main():
    torch.set_num_threads(2)
    for name in MODELS:
        out = build(name)
        make_adapter(name, out)
        print(f"{name}: {os.path.getsize(os.path.join(out, 'model.safetensors'))} bytes")
    shutil.rmtree(os.path.join(OUT, "work"), ignore_errors=True)


if __name__ == "__main__":
    main()
