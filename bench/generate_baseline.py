"""Baseline for bench_generate_cpu: transformers' generate at batch 1 on the CPU, on the
random Qwen2.5-0.5B-shaped folder of bench/forward_baseline.py (created there if missing).

Greedy (do_sample=False), eos_token_id=None and min_new_tokens = max_new_tokens = N, so both
sides produce exactly N tokens from the same P random prompt ids; torch threads = 2.
Time to first token = generate(max_new_tokens=1); decode tokens/s = (N − 1) / (t(N) − t(1)).
Best of --reps, once with bf16 weights computed in bf16 and once upcast to fp32.

    /opt/gv/bin/python bench/generate_baseline.py [--dir /tmp/lorafit-bench-qwen2.5-0.5b]
        [--prompt 32] [--new 16] [--reps 2]
"""
import argparse
import os
import sys
import time

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_baseline import make_model  # noqa: E402


def timed_generate(model, ids, n):
    t0 = time.perf_counter()
    model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n, min_new_tokens=n,
                   eos_token_id=None, pad_token_id=0)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/lorafit-bench-qwen2.5-0.5b")
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--make-only", action="store_true")
    a = ap.parse_args()
    make_model(a.dir)
    if a.make_only:
        return
    torch.set_num_threads(2)
    for dtype in (torch.bfloat16, torch.float32):
        model = transformers.AutoModelForCausalLM.from_pretrained(a.dir, torch_dtype=dtype,
                                                                  attn_implementation="sdpa").eval()
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, model.config.vocab_size, (1, a.prompt), generator=g)
        with torch.no_grad():
            timed_generate(model, ids, 2)  # warm-up
            t1 = min(timed_generate(model, ids, 1) for _ in range(a.reps))
            tn = min(timed_generate(model, ids, a.new) for _ in range(a.reps))
        name = str(dtype).replace("torch.", "")
        print(f"transformers {name} generate B=1 P={a.prompt} N={a.new}: ttft {t1:.3f} s, "
              f"decode {(a.new - 1) / (tn - t1):.2f} tokens/s (best of {a.reps})")
        del model


if __name__ == "__main__":
    main()
