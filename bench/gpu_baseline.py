"""GPU baseline for bench/gpu_suite.sh: transformers + PEFT LoRA training on a random-init
Qwen2.5-7B-shaped model, and the model folder lorafit's GPU benchmarks load.

    python bench/gpu_baseline.py --make-model DIR [--layers 4]
        writes DIR (config.json + model.safetensors, bf16, seed 0): every dimension of
        Qwen2.5-7B (hidden 3584, ffn 18944, 28 heads / 4 kv heads of 128, vocab 152064,
        q/k/v biases, untied lm head) with --layers decoder layers (28 = the full model).
    python bench/gpu_baseline.py --train [--layers 4] [--T 384] [--B 2] [--ckpt 1] [--iters 3]
        builds the same shape with from_config directly on the GPU (no download, no disk),
        bf16, SDPA attention, gradient checkpointing on/off, PEFT LoRA r 64 alpha 16 on
        q,k,v,o,gate,up,down, AdamW over the LoRA parameters, random token ids as labels;
        prints one line: `peft <device> train T=.. B=.. ckpt=..: ... tokens/s, MFU ..%`.
MFU uses bench_train_cuda's model-FLOPs formula (4·P + 6·L·H·D·T per token).
--device cpu --tiny runs either mode on a tiny config (a smoke test without a GPU).
Needs torch, transformers and peft (tools/golden/requirements.txt pins the versions).
"""
import argparse
import os
import time

import torch
import transformers


def qwen7b_config(layers, tiny):
    if tiny:  # the same structure, small enough for a CPU smoke test
        return transformers.Qwen2Config(
            vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
            rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
            use_sliding_window=False, torch_dtype="bfloat16")
    return transformers.Qwen2Config(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=layers,
        num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
        use_sliding_window=False, sliding_window=None, torch_dtype="bfloat16",
        bos_token_id=151643, eos_token_id=151643)


def build(cfg, device):
    """Random init (seed 0) directly in bf16 on `device`: never an fp32 copy of the model."""
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = transformers.Qwen2ForCausalLM._from_config(cfg, attn_implementation="sdpa")
    finally:
        torch.set_default_dtype(old)
    return model


def make_model(path, layers, device, tiny):
    if os.path.exists(os.path.join(path, "model.safetensors")) or os.path.exists(
            os.path.join(path, "model.safetensors.index.json")):
        print(f"model folder {path} exists")
        return
    model = build(qwen7b_config(layers, tiny), device)
    model.save_pretrained(path, safe_serialization=True, max_shard_size="100GB")
    print(f"wrote {path}")


def model_flops_per_token(cfg, T):
    C, F, H, Hkv = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.num_key_value_heads
    D, L, V = C // H, cfg.num_hidden_layers, cfg.vocab_size
    P = L * (2 * C * H * D + 2 * C * Hkv * D + 3 * C * F) + V * C
    return 4 * P + 6 * L * H * D * T


def train(args):
    import peft
    cfg = qwen7b_config(args.layers, args.tiny)
    model = build(cfg, args.device)
    if args.ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lc = peft.LoraConfig(r=64, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                         "down_proj"])
    model = peft.get_peft_model(model, lc)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (args.B, args.T), generator=g).to(args.device)
    cuda = args.device.startswith("cuda")

    def step():
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss.item()

    step()  # warm-up
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    loss = 0.0
    for _ in range(args.iters):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    s = (time.perf_counter() - t0) / args.iters
    tok_s = args.B * args.T / s
    mfu = tok_s * model_flops_per_token(cfg, args.T) / (args.peak_tflops * 1e12)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else -1.0
    print(f"peft {args.device} train T={args.T} B={args.B} ckpt={int(args.ckpt)} layers={args.layers}: "
          f"{s:.3f} s/step, {tok_s:.0f} tokens/s, MFU {100 * mfu:.1f}% (peak {args.peak_tflops:.0f} TFLOPS), "
          f"peak torch memory {peak:.2f} GiB, loss {loss:.4f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-model", metavar="DIR")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--T", type=int, default=384)
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--ckpt", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    if args.make_model:
        make_model(args.make_model, args.layers, args.device, args.tiny)
    if args.train:
        train(args)
    if not args.make_model and not args.train:
        ap.error("give --make-model DIR and/or --train")


if __name__ == "__main__":
    main()
