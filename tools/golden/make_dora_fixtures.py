"""DoRA reference fixtures (PEFT 0.13.2 use_dora=True, transformers 4.46.3, CPU, fp32 compute).

1. tests/fixtures/train/<case>-dora/{case.json, tensors.safetensors}: the LoRA training golden
   of make_train_fixtures.py (same data, optimizer loop, Trainer semantics; read its docstring)
   with use_dora=True: init (A from PEFT's kaiming init, B = 0, lora_magnitude_vector = PEFT's
   ||W|| per row), gradcheck_B / gradcheck_grad (random B, one micro-batch), grad1 and final
   (A, B and m) after 20 steps. Keys are PEFT's saved keys (the magnitude without ".weight").
2. tests/fixtures/adapter/<name>/: a DoRA adapter written by PEFT's save_pretrained (random B
   and a perturbed magnitude so that m != ||W + sBA||), and <name>.logits.safetensors:
     input_ids I64 (1, T); logits F32 (1, T, V) PEFT unmerged, eval; base_logits F32;
     merged_logits F32 (1, T, V) after merge_and_unload(); merged.<module>.weight F32 (O, I)
     every adapted weight as merge_and_unload() left it; for a bf16 base also bf16_logits F32
     (1, T, V): the base loaded in bf16 + PeftModel.from_pretrained(the saved adapter), the
     forward under torch.autocast("cpu", bf16) (docs/precision.md "DoRA"); "logits" is then the
     fp32 run of the same bf16 weights upcast.

PEFT facts this relies on (peft/tuners/lora/layer.py Linear.forward, dora.py): with DoRA the
input is dropped out once, x = dropout(x), and
  result = base(x) + (m/n - 1) * F.linear(x, W) + (m/n) * lora_B(lora_A(x)) * s,
n = ||W + s * lora_B(lora_A(eye)).T|| per row, detached; merge W' = (m/n)[:, None] * (W + s*B@A).

3. tests/fixtures/train/qwen2-untied-bf16-dora/: bf16 mixed precision (Trainer bf16=True; read
   make_bf16_fixtures.py): the bf16-weight model, the forward under torch.autocast("cpu", bf16),
   fp32 DoRA masters; 20 steps in bf16 (steps, final.) and, from the same init and data, in fp32
   from the same weights upcast (steps_fp32, final_fp32.): the bounds of test_train_bf16.cpp.
   init.*lora_magnitude_vector is PEFT's init on the bf16 weights (||W|| rounded to bf16, then
   cast to fp32 by autocast_adapter_dtype).

4. tests/fixtures/bf16/dora-linear.safetensors: one PEFT DoRA Linear (bf16 base weight W (O, I)
   with a bias, fp32 lora A (r, I), B (O, r), magnitude m (O) != ||W + sBA||) on a bf16 input x
   (N, I), forward and backward under torch.autocast("cpu", bf16) with an upstream gradient dy
   (N, O): y, dx (bf16), dA, dB, dm (fp32). All stored as F32 values (bf16-exact where bf16).

Regenerate (repository root, after tools/golden/make_models.py):
    OMP_NUM_THREADS=2 ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 /opt/gv/bin/python tools/golden/make_dora_fixtures.py [case ...]
(cases: the TRAIN_CASES keys, the ADAPTER_CASES names, "bf16-train" for 3 and "bf16-linear" for 4.)
then, on a CPU with AMX and without ONEDNN_MAX_CPU_ISA, "bf16-train-amx": case 3's bf16 run again on
oneDNN's AMX kernels (steps_amx, final_amx.), as make_bf16_fixtures.py kernel-spread does for the
plain LoRA case (read its docstring).
"""
import json
import math
import os
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
import make_train_fixtures as mtf  # noqa: E402
import make_bf16_fixtures as mbf  # noqa: E402

ROOT, FIX = mtf.ROOT, mtf.FIX
TRAIN_CASES = {"qwen2-gqa7-untied-f32": "qwen2-gqa7-untied-f32-dora"}
BF16_CASE = "qwen2-untied-bf16-dora"  # make_bf16_fixtures.TRAIN with use_dora=True
# name -> (base dir, LoraConfig kwargs, T, seed, std of the random B)
ADAPTER_CASES = {
    "qwen2-untied-bf16-dora": (os.path.join(FIX, "models", "qwen2-untied-bf16"),
                               dict(r=4, lora_alpha=8, target_modules="all-linear"), 11, 31, 0.05),
    "stories260K-qv-dora-rslora": (os.path.join(ROOT, "tests", "data", "stories260K"),
                                   dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                        use_rslora=True), 13, 32, 0.3),
}


def saved_key(name):
    """named_parameters name -> the key PEFT's save_pretrained writes."""
    k = name.replace(".default", "")
    return k[:-len(".weight")] if k.endswith("lora_magnitude_vector.weight") else k


def build_peft_dora(case, dropout):
    base = AutoModelForCausalLM.from_pretrained(mtf.model_path(case["model_dir"]), torch_dtype=torch.float32,
                                                attn_implementation="eager")
    cfg = LoraConfig(task_type="CAUSAL_LM", r=case["r"], lora_alpha=case["alpha"], lora_dropout=dropout,
                     target_modules=list(case["targets"]), use_rslora=case["rslora"], bias="none",
                     use_dora=True)
    torch.manual_seed(case["seed"])
    return get_peft_model(base, cfg)


def dora_params(model):
    out = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert "lora_" in name, name
            out[saved_key(name)] = p
    return out


def run_train_case(src):
    case = mtf.CASES[src]
    name = TRAIN_CASES[src]
    model = build_peft_dora(case, 0.0)
    params = dora_params(model)
    assert any(k.endswith("lora_magnitude_vector") for k in params)
    init = {k: p.detach().clone() for k, p in params.items()}
    batches = mtf.make_micro_batches(case, model.config.vocab_size)
    gradcheck_B, gc_grads, gc_loss = mtf.gradcheck(model, params, init, batches, case["seed"],
                                                    case["gradcheck_B_std"])
    steps, micro_losses, micro_info, grad1 = mtf.train(model, params, batches, case["weight_decay"])
    final = {k: p.detach().clone() for k, p in params.items()}
    tensors = {}
    for k, (ids, mask, labels) in enumerate(batches):
        tensors[f"ids.{k}"] = ids
        tensors[f"labels.{k}"] = labels
        tensors[f"attention_mask.{k}"] = mask
    for prefix, d in (("init", init), ("gradcheck_B", gradcheck_B), ("gradcheck_grad", gc_grads),
                      ("grad1", grad1), ("final", final)):
        for k, v in d.items():
            tensors[f"{prefix}.{k}"] = v.float().contiguous()
    out = os.path.join(FIX, "train", name)
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "tensors.safetensors"), metadata={"format": "pt"})
    scale = case["alpha"] / (math.sqrt(case["r"]) if case["rslora"] else case["r"])
    doc = {
        "name": name, "model_dir": case["model_dir"],
        "lora": {"r": case["r"], "alpha": case["alpha"], "dropout": 0.0, "target_modules": case["targets"],
                 "use_rslora": case["rslora"], "use_dora": True, "scaling": scale, "init_seed": case["seed"]},
        "optim": {**mtf.OPTIM, "weight_decay": case["weight_decay"], "optimizer": "torch.optim.AdamW"},
        "data": {"micro_batch_size": mtf.MICRO_BATCH, "num_micro_batches": len(batches), "pad_id": mtf.PAD_ID,
                 "padding": "right", "source": case["data"]},
        "lora_keys": list(init),
        "micro_batch_loss": micro_losses, "micro_batch_tokens": micro_info,
        "steps": steps,
        "gradcheck_loss": gc_loss, "gradcheck_B_std": case["gradcheck_B_std"],
    }
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(f"{name}: loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f}, grad_norm[0] "
          f"{steps[0]['grad_norm']:.4g}, gradcheck {gc_loss:.4f}")


def build_peft_dora_bf16(dtype):
    t = mbf.TRAIN
    base = mbf.load(os.path.join(FIX, t["model_dir"]), dtype)
    cfg = LoraConfig(task_type="CAUSAL_LM", r=t["r"], lora_alpha=t["alpha"], lora_dropout=0.0,
                     target_modules=list(t["targets"]), use_rslora=t["rslora"], bias="none", use_dora=True)
    torch.manual_seed(t["seed"])
    model = get_peft_model(base, cfg)  # autocast_adapter_dtype=True: fp32 masters, magnitude included
    for p in model.parameters():
        if p.requires_grad:
            assert p.dtype == torch.float32, p.dtype
    return model


def run_bf16_case():
    """make_bf16_fixtures.train_case with use_dora=True (same model, data, seed, optimizer)."""
    t = mbf.TRAIN
    mb = build_peft_dora_bf16(torch.bfloat16)
    init = {k: p.detach().clone() for k, p in dora_params(mb).items()}
    batches = mtf.make_micro_batches(t, mb.config.vocab_size)
    m32 = build_peft_dora_bf16(torch.float32)
    saved_lora_params = mtf.lora_params
    mtf.lora_params = dora_params  # the magnitude's saved key has no ".weight"
    try:
        steps, micro, info, grad1, final = mbf.train_run(mb, init, batches, autocast=True)
        steps32, micro32, _, _, final32 = mbf.train_run(m32, init, batches, autocast=False)
    finally:
        mtf.lora_params = saved_lora_params
    mbf.save_train_case(BF16_CASE, batches, init, grad1, final, final32, steps, micro, info, steps32, micro32,
                        note="DoRA (use_dora=True). steps/final: bf16 weights, forward under torch.autocast(cpu, bf16), "
                             "SDPA attention, fp32 LoRA/magnitude masters, grads and AdamW (Trainer bf16=True); "
                             "steps_fp32/final_fp32: the same weights upcast to fp32, no autocast, same init and data",
                        use_dora=True)


def run_linear_case():
    N, I, O, r, alpha = 13, 72, 40, 4, 8
    g = torch.Generator().manual_seed(41)
    base = torch.nn.Linear(I, O, bias=True).to(torch.bfloat16)
    with torch.no_grad():
        base.weight.copy_(torch.randn(O, I, generator=g) * 0.2)
        base.bias.copy_(torch.randn(O, generator=g) * 0.1)
    holder = torch.nn.Module()
    holder.lin = base
    model = get_peft_model(holder, LoraConfig(r=r, lora_alpha=alpha, target_modules=["lin"], use_dora=True))
    lin = model.base_model.model.lin
    A, B = lin.lora_A["default"].weight, lin.lora_B["default"].weight
    mag = lin.lora_magnitude_vector["default"].weight
    with torch.no_grad():
        A.copy_(torch.randn(A.shape, generator=g) * 0.3)
        B.copy_(torch.randn(B.shape, generator=g) * 0.3)
        mag.mul_(1 + 0.2 * torch.randn(mag.shape, generator=g))
    assert A.dtype == B.dtype == mag.dtype == torch.float32
    x = (torch.randn(N, I, generator=g)).to(torch.bfloat16).requires_grad_(True)
    dy = torch.randn(N, O, generator=g).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lin(x)
    assert y.dtype == torch.bfloat16
    y.backward(dy)
    t = {"x": x.detach(), "W": base.weight.detach(), "bias": base.bias.detach(), "A": A.detach(),
         "B": B.detach(), "m": mag.detach(), "dy": dy, "y": y.detach(), "dx": x.grad, "dA": A.grad,
         "dB": B.grad, "dm": mag.grad}
    save_file({k: v.float().contiguous() for k, v in t.items()}, os.path.join(FIX, "bf16", "dora-linear.safetensors"),
              metadata={"format": "pt", "scaling": str(alpha / r)})
    print(f"dora-linear: |y| max {y.abs().max().item():.3g}, |dx| max {x.grad.abs().max().item():.3g}")


def run_adapter_case(name):
    base, kw, T, seed, b_std = ADAPTER_CASES[name]
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    V = model.config.vocab_size
    ids = torch.randint(0, V, (1, T), generator=torch.Generator().manual_seed(seed + 100))
    with torch.no_grad():
        base_logits = model(ids).logits.float()
    peft_model = get_peft_model(model, LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", use_dora=True, **kw))
    g = torch.Generator().manual_seed(seed + 200)
    with torch.no_grad():
        for pname, p in peft_model.named_parameters():
            if "lora_B" in pname:
                p.copy_(torch.randn(p.shape, generator=g) * b_std)
            elif "lora_magnitude_vector" in pname:  # m != ||W + sBA||: the magnitude matters
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g))
    peft_model.eval()
    with torch.no_grad():
        logits = peft_model(ids).logits.float()
    d = os.path.join(FIX, "adapter", name)
    peft_model.save_pretrained(d)
    cfg_path = os.path.join(d, "adapter_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    assert cfg["use_dora"] is True
    cfg["base_model_name_or_path"] = os.path.relpath(base, d)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    readme = os.path.join(d, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    merged = peft_model.merge_and_unload()
    merged.eval()
    with torch.no_grad():
        merged_logits = merged(ids).logits.float()
    tensors = {"input_ids": ids.to(torch.int64).contiguous(), "logits": logits.contiguous(),
               "base_logits": base_logits.contiguous(), "merged_logits": merged_logits.contiguous()}
    if AutoConfig.from_pretrained(base).torch_dtype == torch.bfloat16:
        b16 = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
        b16 = PeftModel.from_pretrained(b16, d)  # autocast_adapter_dtype: fp32 A, B, magnitude
        b16.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            tensors["bf16_logits"] = b16(ids).logits.float().contiguous()
        print(f"{name}: bf16 autocast vs fp32 max |logit diff| "
              f"{(tensors['bf16_logits'] - logits).abs().max().item():.4f}")
    targets = set()
    for mname, mod in merged.named_modules():
        if isinstance(mod, torch.nn.Linear) and mname != "lm_head":
            short = mname.rsplit(".", 1)[-1]
            if kw["target_modules"] == "all-linear" or short in kw["target_modules"]:
                tensors[f"merged.{mname}.weight"] = mod.weight.detach().float().contiguous()
                targets.add(short)
    save_file(tensors, os.path.join(FIX, "adapter", f"{name}.logits.safetensors"), metadata={"format": "pt"})
    print(f"{name}: modules {sorted(targets)}, max |adapter - base| logit "
          f"{(logits - base_logits).abs().max().item():.4f}, max |merged - unmerged| "
          f"{(merged_logits - logits).abs().max().item():.2e}")


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    names = sys.argv[1:] or (list(TRAIN_CASES) + list(ADAPTER_CASES) + ["bf16-train", "bf16-linear"])
    for n in names:
        if n == "bf16-linear":
            run_linear_case()
        elif n == "bf16-train":  # the adapter case of the same model has BF16_CASE's name
            run_bf16_case()
        elif n == "bf16-train-amx":
            mbf.kernel_spread_case(BF16_CASE, lambda: build_peft_dora_bf16(torch.bfloat16), dora_params)
        elif n in TRAIN_CASES:
            run_train_case(n)
        else:
            run_adapter_case(n)


if __name__ == "__main__":
    main()
