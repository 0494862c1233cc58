"""PEFT adapter fixtures: adapters written by PEFT itself and the logits transformers + PEFT
give with them, for lorafit's adapter loading (unmerged and merged) to match.

For each case: torch.manual_seed(seed); model = AutoModelForCausalLM.from_pretrained(base,
torch_dtype=float32) (bf16 weights upcast exactly); get_peft_model(model, LoraConfig(...))
(A: PEFT's kaiming-uniform init); every lora_B set to N(0, 0.05²) so the adapter changes the
output; model.save_pretrained(tests/fixtures/adapter/<name>/) (adapter_config.json +
adapter_model.safetensors, untouched except base_model_name_or_path, rewritten relative to
the adapter folder so the fixture works from any checkout); then writes
tests/fixtures/adapter/<name>.logits.safetensors:
  input_ids I64 (1, T)   seeded random ids
  logits    F32 (1, T, V) transformers + PEFT (unmerged, eval, fp32 compute)
  base_logits F32 (1, T, V) the base model alone (so a test can see the adapter matters)

Regenerate (repository root): /opt/gv/bin/python tools/golden/make_adapter_fixtures.py
(the issue-13 cases: see RECENT_CASES)
"""
import json
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "adapter")

# name -> (base dir, LoraConfig kwargs, T, seed)
CASES = {
    "qwen2-untied-bf16-all": (os.path.join(FIX, "models", "qwen2-untied-bf16"),
                              dict(r=4, lora_alpha=8, target_modules="all-linear"), 11, 11),
    "stories260K-qv-rslora": (os.path.join(ROOT, "tests", "data", "stories260K"),
                              dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], use_rslora=True), 13,
                              12),
}
# Issue-13 architectures (Qwen3 q_norm/k_norm, llama3 RoPE): transformers 4.57.6 + PEFT 0.17.1,
# tools/golden/requirements-models.txt. Written only when named on the command line:
#   /opt/models-venv/bin/python tools/golden/make_adapter_fixtures.py qwen3-gqa-tied-f32-all \
#       qwen3-untied-bf16-all llama31-rope-f32-all
RECENT_CASES = {
    "qwen3-gqa-tied-f32-all": (os.path.join(FIX, "models", "qwen3-gqa-tied-f32"),
                               dict(r=4, lora_alpha=8, target_modules="all-linear"), 12, 21),
    "qwen3-untied-bf16-all": (os.path.join(FIX, "models", "qwen3-untied-bf16"),
                              dict(r=4, lora_alpha=16, target_modules="all-linear", use_rslora=True), 10, 22),
    "llama31-rope-f32-all": (os.path.join(FIX, "models", "llama31-rope-f32"),
                             dict(r=4, lora_alpha=8, target_modules="all-linear"), 14, 23),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    names = sys.argv[1:] or list(CASES)
    for name in names:
        base, kw, T, seed = CASES[name] if name in CASES else RECENT_CASES[name]
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32, attn_implementation="eager")
        model.eval()
        V = model.config.vocab_size
        ids = torch.randint(0, V, (1, T), generator=torch.Generator().manual_seed(seed + 100))
        with torch.no_grad():
            base_logits = model(ids).logits.float()
        peft_model = get_peft_model(model, LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", **kw))
        g = torch.Generator().manual_seed(seed + 200)
        with torch.no_grad():
            for pname, p in peft_model.named_parameters():
                if "lora_B" in pname:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        peft_model.eval()
        with torch.no_grad():
            logits = peft_model(ids).logits.float()
        d = os.path.join(OUT, name)
        peft_model.save_pretrained(d)
        cfg_path = os.path.join(d, "adapter_config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["base_model_name_or_path"] = os.path.relpath(base, d)
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
        readme = os.path.join(d, "README.md")  # PEFT's model card template: not needed
        if os.path.exists(readme):
            os.remove(readme)
        save_file({"input_ids": ids.to(torch.int64).contiguous(), "logits": logits.contiguous(),
                   "base_logits": base_logits.contiguous()},
                  os.path.join(OUT, f"{name}.logits.safetensors"), metadata={"format": "pt"})
        diff = (logits - base_logits).abs().max().item()
        print(f"{name}: {sum(1 for n, _ in peft_model.named_parameters() if 'lora_A' in n)} adapted modules, "
              f"max |adapter − base| logit {diff:.4f}")


if __name__ == "__main__":
    main()
