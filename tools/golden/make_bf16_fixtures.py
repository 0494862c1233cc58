"""bf16 mixed-precision reference fixtures: transformers 4.46.3 + PEFT 0.13.2, torch 2.5.1 CPU.

What `--bf16 true` must match is Hugging Face TrainingArguments(bf16=True) on a model loaded
with torch_dtype=torch.bfloat16: accelerate wraps the forward in torch.autocast("cpu",
dtype=torch.bfloat16), PEFT keeps the LoRA masters fp32 (get_peft_model's
autocast_adapter_dtype=True), the attention is the default SDPA. The rounding points that
follow from this are written down in docs/precision.md; this script only records what the
reference computes, once in bf16 and once in fp32 (the same bf16 weights, upcast), so the tests
can bound lorafit's bf16 run by the reference's own bf16-vs-fp32 spread and check that it is
closer to the bf16 run.

Writes, under tests/fixtures/bf16/:
  forward-<model>.safetensors  input_ids I64 (B,T); per layer i = 0..L the residual stream
        "residual.{i}" (0 = embeddings, i = output of layer i-1) and "hidden" (after the
        final norm), each as bf16 (the bf16 run) and as "<name>.f32" (the fp32 run), plus
        the last position's logits "logits" / "logits.f32" (F32 values; bf16-exact for bf16).
  greedy.json  greedy continuations of the bf16 models in bf16 (model.generate, do_sample
        False, KV cache bf16) with each step's top-2 logit gap.
and tests/fixtures/train/qwen2-untied-bf16/{case.json, tensors.safetensors}: 20 optimizer
steps in the format of make_train_fixtures.py (the bf16 run), plus "steps_fp32" and the
"final_fp32." tensors of the fp32 run from the same initial A.

Regenerate (from the repository root, after tools/golden/make_models.py):
    OMP_NUM_THREADS=2 ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 /opt/gv/bin/python tools/golden/make_bf16_fixtures.py
    OMP_NUM_THREADS=2 /opt/gv/bin/python tools/golden/make_bf16_fixtures.py kernel-spread   # on a CPU with AMX

The first command is the reference as it ran on an AVX512-BF16 CPU (oneDNN's avx512_core_bf16
GEMM kernels; ONEDNN_MAX_CPU_ISA makes an AMX CPU run them too: on a Xeon with AMX this
reproduced the committed final A/B to within 0.001 of the test's bound). The second
repeats the bf16 training run with oneDNN's AMX kernels, whose fp32 sums of the bf16 products
run in another order, and adds it to the training fixture as "steps_amx" / "final_amx.": the
reference's own spread across CPUs, which the test adds to its bounds (the same code on another
x86 CPU moves the final A/B by up to 0.43 of the bf16-vs-fp32 spread).
"""
import json
import math
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_train_fixtures as mt  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "bf16")
BF16_MODELS = ["qwen2-untied-bf16", "llama-tied-bf16", "llama-headdim-bf16"]
# Issue 13 (Qwen3 q_norm/k_norm under autocast): forward only, transformers 4.57.6 + PEFT 0.17.1
# (tools/golden/requirements-models.txt):
#   OMP_NUM_THREADS=2 /opt/models-venv/bin/python tools/golden/make_bf16_fixtures.py recent
RECENT_BF16_MODELS = ["qwen3-untied-bf16"]
FORWARD_B, FORWARD_T = 2, 24
GREEDY_NEW = 16

TRAIN_CASE = "qwen2-untied-bf16"
TRAIN = dict(model_dir=f"models/{TRAIN_CASE}", r=4, alpha=8, targets=mt.ALL7, rslora=False,
             weight_decay=0.0, seed=21, data="random")


def load(model_dir, dtype):
    m = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=dtype, attn_implementation="sdpa")
    m.eval()
    return m


def residuals(model, ids, autocast):
    """residual.0..L and hidden of one forward, through forward hooks on the decoder layers."""
    got = {}
    hooks = [model.model.embed_tokens.register_forward_hook(
        lambda mod, inp, out: got.__setitem__("residual.0", out.detach().clone()))]
    for i, layer in enumerate(model.model.layers):
        hooks.append(layer.register_forward_hook(
            lambda mod, inp, out, i=i: got.__setitem__(  # transformers 4.57 returns the tensor itself
                f"residual.{i + 1}", (out[0] if isinstance(out, tuple) else out).detach().clone())))
    hooks.append(model.model.norm.register_forward_hook(
        lambda mod, inp, out: got.__setitem__("hidden", out.detach().clone())))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=ids, use_cache=False).logits
    for h in hooks:
        h.remove()
    got["logits"] = logits[:, -1, :].float()
    return got


def forward_case(name):
    model_dir = os.path.join(FIX, "models", name)
    vocab = load(model_dir, torch.bfloat16).config.vocab_size
    gen = torch.Generator().manual_seed(500 + (BF16_MODELS + RECENT_BF16_MODELS).index(name))
    ids = torch.randint(3, vocab, (FORWARD_B, FORWARD_T), generator=gen)
    b = residuals(load(model_dir, torch.bfloat16), ids, autocast=True)
    f = residuals(load(model_dir, torch.float32), ids, autocast=False)
    t = {"input_ids": ids}
    for k in b:
        assert b[k].dtype == (torch.float32 if k == "logits" else torch.bfloat16), (k, b[k].dtype)
        t[k] = b[k].contiguous()
        t[k + ".f32"] = f[k].float().contiguous()
    save_file(t, os.path.join(OUT, f"forward-{name}.safetensors"), metadata={"format": "pt"})
    d = (b["hidden"].float() - f["hidden"]).abs().max().item()
    print(f"forward {name}: max |bf16 - fp32| of hidden {d:.4g}")


def greedy_case(name):
    model_dir = os.path.join(FIX, "models", name)
    model = load(model_dir, torch.bfloat16)
    gen = torch.Generator().manual_seed(600 + BF16_MODELS.index(name))
    prompt = torch.randint(3, model.config.vocab_size, (1, 7), generator=gen)
    with torch.no_grad():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=GREEDY_NEW, min_new_tokens=GREEDY_NEW, output_scores=True,
                             return_dict_in_generate=True, pad_token_id=0)
    new = out.sequences[0, prompt.shape[1]:].tolist()
    gaps = []
    for s in out.scores:
        top = torch.topk(s[0].float(), 2).values
        gaps.append((top[0] - top[1]).item())
    return {"name": name, "model_dir": f"models/{name}", "prompt_ids": prompt[0].tolist(),
            "new_ids": new, "top2_logit_gap": gaps,
            "note": "bf16 weights, bf16 activations and KV cache (model.generate, greedy); gap = "
                    "top-1 minus top-2 of the step's bf16 logits, 0 = a tie (argmax takes the lower id)"}


def build_peft(dtype):
    base = load(os.path.join(FIX, TRAIN["model_dir"]), dtype)
    cfg = LoraConfig(task_type="CAUSAL_LM", r=TRAIN["r"], lora_alpha=TRAIN["alpha"], lora_dropout=0.0,
                     target_modules=list(TRAIN["targets"]), use_rslora=TRAIN["rslora"], bias="none")
    torch.manual_seed(TRAIN["seed"])
    model = get_peft_model(base, cfg)  # autocast_adapter_dtype=True: fp32 LoRA masters
    for p in model.parameters():
        if p.requires_grad:
            assert p.dtype == torch.float32, p.dtype
    return model


def train_run(model, init, batches, autocast):
    """make_train_fixtures.train with the forward under autocast, as accelerate runs it."""
    params = mt.lora_params(model)
    mt.set_params(params, init)
    real = mt.forward_logits

    def fwd(m, ids, mask):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return real(m, ids, mask)
    mt.forward_logits = fwd
    try:
        steps, micro, info, grad1 = mt.train(model, params, batches, TRAIN["weight_decay"])
    finally:
        mt.forward_logits = real
    return steps, micro, info, grad1, {k: p.detach().clone() for k, p in params.items()}


def train_case():
    mb = build_peft(torch.bfloat16)
    init = {k: p.detach().clone() for k, p in mt.lora_params(mb).items()}  # A = fp32(bf16(kaiming))
    batches = mt.make_micro_batches(TRAIN, mb.config.vocab_size)
    steps, micro, info, grad1, final = train_run(mb, init, batches, autocast=True)
    steps32, micro32, _, _, final32 = train_run(build_peft(torch.float32), init, batches, autocast=False)

    save_train_case(TRAIN_CASE, batches, init, grad1, final, final32, steps, micro, info, steps32, micro32,
                    note="steps/final: bf16 weights, forward under torch.autocast(cpu, bf16), SDPA attention, fp32 LoRA "
                         "masters/grads/AdamW (Trainer bf16=True); steps_fp32/final_fp32: the same weights upcast to "
                         "fp32, no autocast, same init and data")


def save_train_case(case, batches, init, grad1, final, final32, steps, micro, info, steps32, micro32, note,
                    use_dora=False):
    """Writes tests/fixtures/train/<case>/{tensors.safetensors, case.json} of a bf16-vs-fp32 pair of
    runs on TRAIN's model, data and optimizer (also make_dora_fixtures.py's bf16 DoRA case)."""
    tensors = {}
    for k, (ids, mask, labels) in enumerate(batches):
        tensors[f"ids.{k}"] = ids
        tensors[f"labels.{k}"] = labels
        tensors[f"attention_mask.{k}"] = mask
    for prefix, d in (("init", init), ("grad1", grad1), ("final", final), ("final_fp32", final32)):
        for k, v in d.items():
            tensors[f"{prefix}.{k}"] = v.float().contiguous()
    out = os.path.join(FIX, "train", case)
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "tensors.safetensors"), metadata={"format": "pt"})
    lora = {"r": TRAIN["r"], "alpha": TRAIN["alpha"], "dropout": 0.0, "target_modules": TRAIN["targets"],
            "use_rslora": TRAIN["rslora"]}
    if use_dora:
        lora["use_dora"] = True
    lora.update({"scaling": TRAIN["alpha"] / TRAIN["r"], "init_seed": TRAIN["seed"]})
    doc = {
        "name": case, "model_dir": TRAIN["model_dir"], "precision": "bf16", "lora": lora,
        "optim": {**mt.OPTIM, "weight_decay": TRAIN["weight_decay"], "optimizer": "torch.optim.AdamW"},
        "data": {"micro_batch_size": mt.MICRO_BATCH, "num_micro_batches": len(batches), "pad_id": mt.PAD_ID,
                 "padding": "right", "source": TRAIN["data"]},
        "lora_keys": list(init),
        "micro_batch_loss": micro, "micro_batch_tokens": info, "steps": steps,
        "micro_batch_loss_fp32": micro32, "steps_fp32": steps32,
        "note": note,
    }
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(f"train {case}: loss bf16 {steps[0]['loss']:.5f} -> {steps[-1]['loss']:.5f}, "
          f"fp32 {steps32[0]['loss']:.5f} -> {steps32[-1]['loss']:.5f}")


def kernel_spread_case(case=TRAIN_CASE, build=None, lora_params=None):
    """The bf16 training run of `case` again, on oneDNN's AMX kernels, added to its committed
    fixture. build() makes the bf16 PEFT model (default build_peft(bf16)); lora_params, when
    given, replaces make_train_fixtures.lora_params for the run (the DoRA case's saved keys)."""
    with open("/proc/cpuinfo") as f:
        assert " amx_bf16" in f.read(), "kernel-spread needs a CPU with AMX (amx_bf16)"
    assert not os.environ.get("ONEDNN_MAX_CPU_ISA"), "unset ONEDNN_MAX_CPU_ISA: this run is the AMX one"
    out = os.path.join(FIX, "train", case)
    tensors = load_file(os.path.join(out, "tensors.safetensors"))
    with open(os.path.join(out, "case.json")) as f:
        doc = json.load(f)
    mb = build() if build else build_peft(torch.bfloat16)
    init = {k: tensors[f"init.{k}"] for k in doc["lora_keys"]}
    saved = mt.lora_params
    if lora_params:
        mt.lora_params = lora_params
    try:
        steps, _, _, _, final = train_run(mb, init, mt.make_micro_batches(TRAIN, mb.config.vocab_size), autocast=True)
    finally:
        mt.lora_params = saved
    for k, v in final.items():
        tensors[f"final_amx.{k}"] = v.float().contiguous()
    doc["steps_amx"] = steps
    doc["note_amx"] = ("steps_amx/final_amx: the bf16 run again with oneDNN's AMX GEMM kernels (another fp32 "
                       "summation order of the same bf16 products): the reference's own spread across x86 CPUs")
    save_file(tensors, os.path.join(out, "tensors.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(f"kernel-spread {case}: loss bf16 (AMX) {steps[0]['loss']:.5f} -> {steps[-1]['loss']:.5f}")


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ["kernel-spread"]:
        kernel_spread_case()
        return
    if sys.argv[1:] == ["recent"]:
        for name in RECENT_BF16_MODELS:
            forward_case(name)
        return
    for name in BF16_MODELS:
        forward_case(name)
    greedy = [greedy_case(name) for name in BF16_MODELS]
    with open(os.path.join(OUT, "greedy.json"), "w") as f:
        json.dump(greedy, f, indent=1)
    train_case()


if __name__ == "__main__":
    main()
