"""Checks a folder written by `lorafit merge` with the reference stack: transformers loads it
as it is (AutoModelForCausalLM + AutoTokenizer when tokenizer files are present), and its
logits on seeded random ids match transformers + PEFT running the base model with the
unmerged adapter.

Bound (relative L2 of the logits): fp32 base: 1e-4 (fp32 reassociation, W + s·B·A vs
x·Wᵀ + s·(x·Aᵀ)·Bᵀ, far above 2^-23·K·L for these sizes); bf16 base: the merged weight is
rounded to bf16 once (2^-9 relative per element), 2·7·L·2^-9 as in
tests/unit/test_generate_adapter.cpp.

Usage (repository root; CI never runs Python):
    build/lorafit merge --adapter tests/fixtures/adapter/qwen2-untied-bf16-all --output /tmp/merged
    /opt/gv/bin/python tools/golden/check_merged.py --merged /tmp/merged \
        --adapter tests/fixtures/adapter/qwen2-untied-bf16-all
"""
import argparse
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--merged", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--model", help="base folder (default: the adapter's base_model_name_or_path)")
    ap.add_argument("--tokens", type=int, default=16)
    a = ap.parse_args()
    base_dir = a.model
    if base_dir is None:
        with open(os.path.join(a.adapter, "adapter_config.json")) as f:
            base_dir = json.load(f)["base_model_name_or_path"]
        if not os.path.isabs(base_dir) and not os.path.exists(base_dir):
            base_dir = os.path.normpath(os.path.join(a.adapter, base_dir))

    # Loaded as transformers loads any folder, in its own dtype.
    merged_native = AutoModelForCausalLM.from_pretrained(a.merged, torch_dtype="auto")
    print(f"transformers loaded {a.merged} ({merged_native.dtype}, {merged_native.num_parameters()} parameters)")
    if os.path.exists(os.path.join(a.merged, "tokenizer_config.json")):
        tok = AutoTokenizer.from_pretrained(a.merged)
        print(f"tokenizer loaded ({len(tok)} tokens)")
    bf16 = merged_native.dtype == torch.bfloat16

    merged = AutoModelForCausalLM.from_pretrained(a.merged, torch_dtype=torch.float32, attn_implementation="eager")
    base = AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32, attn_implementation="eager")
    peft = PeftModel.from_pretrained(base, a.adapter).eval()
    V = merged.config.vocab_size
    ids = torch.randint(0, V, (1, a.tokens), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = merged.eval()(ids).logits.double()
        want = peft(ids).logits.double()
    rel = ((got - want).norm() / want.norm()).item()
    L = merged.config.num_hidden_layers
    bound = 2 * 7 * L * 2.0**-9 if bf16 else 1e-4
    print(f"relative L2 of logits, merged folder vs transformers + PEFT unmerged: {rel:.3e} (bound {bound:.3e})")
    if rel > bound:
        print("FAIL")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
