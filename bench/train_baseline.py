"""Baseline for bench_train_step: transformers 4.46.3 + PEFT 0.13.2 LoRA training on CPU.

The same work as lorafit's BM_TrainStep: the random Qwen2.5-0.5B-shaped folder that
bench/forward_baseline.py writes (bf16 on disk, loaded as fp32 here because lorafit computes
in fp32), LoRA r 64, alpha 16, dropout 0, all-linear, batch 2 x T random tokens (labels = ids),
one optimizer step per iteration (forward, loss, backward, clip 1.0, AdamW), gradient
checkpointing on or off, torch threads 2. One configuration per process so that the peak
RSS (getrusage ru_maxrss) belongs to it.

    /opt/gv/bin/python bench/train_baseline.py --checkpointing 1 --T 128 [--reps 2] [--bf16 1]
        [--dir /tmp/lorafit-bench-qwen2.5-0.5b]

--bf16 1 is torch's bf16 path instead, as Trainer(bf16=True) runs it on the CPU: the bf16 weights
kept in bf16, the LoRA weights fp32 (PEFT's autocast_adapter_dtype), the forward under
torch.autocast("cpu", torch.bfloat16).

Prints: `peft <fp32|bf16> ckpt=<0|1> T=<T>: <s> s/step, <tok/s> tokens/s, peak RSS <MiB> MiB`.
"""
import argparse
import os
import resource
import sys
import time

import torch
import transformers
from peft import LoraConfig, get_peft_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_baseline import make_model  # noqa: E402  (same model folder as the forward bench)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/lorafit-bench-qwen2.5-0.5b")
    ap.add_argument("--T", type=int, default=384)
    ap.add_argument("--checkpointing", type=int, default=1)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--bf16", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    make_model(a.dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        a.dir, torch_dtype=torch.bfloat16 if a.bf16 else torch.float32)
    if a.checkpointing:
        # What Trainer(gradient_checkpointing=True) does for a PEFT model.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=64, lora_alpha=16, lora_dropout=0.0,
                                             target_modules="all-linear"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (2, a.T), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(a.bf16)):
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.reps):
        step()
    dt = (time.perf_counter() - t0) / a.reps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peft {'bf16' if a.bf16 else 'fp32'} ckpt={a.checkpointing} T={a.T}: {dt:.2f} s/step, {2 * a.T / dt:.1f} tokens/s, "
          f"peak RSS {rss:.0f} MiB (transformers {transformers.__version__}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
