"""Baseline for bench_model_forward: a randomly initialised Qwen2.5-0.5B-shaped model.

Creates the model folder once (transformers 4.46.3, random init with seed 0, bf16,
save_pretrained as safetensors; about 1 GB, not committed) and times transformers' CPU
forward of the base model (`model.model(ids)`: embedding -> layers -> final norm, the same
computation lorafit's forward benchmark measures) on B=1, T tokens with torch threads = 2,
once with the bf16 weights computed natively in bf16 and once upcast to fp32 (lorafit
computes in fp32 from the bf16 weights).

    /opt/gv/bin/python bench/forward_baseline.py [--dir /tmp/lorafit-bench-qwen2.5-0.5b]
        [--T 128] [--reps 3] [--make-only]

Prints one line per dtype: `transformers <dtype> forward: <s> s/iter, <tok/s> tokens/s`.
"""
import argparse
import os
import time

import torch
import transformers


def make_model(path):
    if os.path.exists(os.path.join(path, "model.safetensors")):
        return
    cfg = transformers.Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        use_sliding_window=False, sliding_window=None, torch_dtype="bfloat16",
        bos_token_id=151643, eos_token_id=151643)
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    print(f"wrote {path}")


def time_forward(path, dtype, T, reps):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path, torch_dtype=dtype, attn_implementation="sdpa").eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (1, T), generator=g)
    with torch.no_grad():
        model.model(ids)  # warm-up
        t0 = time.perf_counter()
        for _ in range(reps):
            model.model(ids)
        dt = (time.perf_counter() - t0) / reps
    name = str(dtype).replace("torch.", "")
    print(f"transformers {name} forward: {dt:.3f} s/iter, {T / dt:.1f} tokens/s (B=1, T={T}, reps={reps})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/lorafit-bench-qwen2.5-0.5b")
    ap.add_argument("--T", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--make-only", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    make_model(a.dir)
    if a.make_only:
        return
    for dtype in (torch.bfloat16, torch.float32):
        time_forward(a.dir, dtype, a.T, a.reps)


if __name__ == "__main__":
    main()
