"""Checks a lorafit adapter folder against PEFT 0.13: keys, shapes, dtype and adapter_config.json as
docs/SPEC.md says, then PeftModel.from_pretrained loads it and its next-token NLLs equal what
`lorafit score --adapter` computes with the same adapter (LoRA or DoRA: use_dora true).

Usage (from the repository root, after a `lorafit train` run):
    /opt/gv/bin/python tools/golden/check_peft_load.py --lorafit build/lorafit \
        --model tests/data/stories260K --adapter RUN/final [--text "Once upon a time ..."]
Exit 0 when everything matches. Not run by CI (CI never runs Python); run it by hand when the
adapter writer or the forward changes.
"""
import argparse
import json
import pathlib
import subprocess
import sys

import torch
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

CONFIG_KEYS = ["alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode",
               "init_lora_weights", "layer_replication", "layers_pattern", "layers_to_transform", "loftq_config",
               "lora_alpha", "lora_dropout", "megatron_config", "megatron_core", "modules_to_save", "peft_type", "r",
               "rank_pattern", "revision", "target_modules", "task_type", "use_dora", "use_rslora"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lorafit", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--input_ids", help="comma-separated ids instead of --text (a model folder without a tokenizer)")
    ap.add_argument("--text", default='Sue had a big box. One day Sue went to the yard with the big box. Tom saw it.')
    a = ap.parse_args()
    adapter = pathlib.Path(a.adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    assert not missing, f"adapter_config.json lacks {missing}"
    assert list(cfg) == sorted(cfg), "adapter_config.json keys are not sorted"
    r = cfg["r"]
    with safe_open(adapter / "adapter_model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}, f.metadata()
        for k in f.keys():
            t = f.get_tensor(k)
            assert t.dtype == torch.float32, (k, t.dtype)
            if cfg["use_dora"] and k.endswith(".lora_magnitude_vector"):  # DoRA: m [O], PEFT's key (no .weight)
                assert k.startswith("base_model.model.model.layers.") and t.ndim == 1, (k, t.shape)
                continue
            assert k.startswith("base_model.model.model.layers.") and k.endswith(("lora_A.weight", "lora_B.weight")), k
            assert (t.shape[0] == r) if ".lora_A." in k else (t.shape[1] == r), (k, t.shape)
        nkeys = len(list(f.keys()))

    if a.input_ids:
        ids = [int(x) for x in a.input_ids.split(",")]
    else:
        ids = AutoTokenizer.from_pretrained(a.model)(a.text)["input_ids"]
    base = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    ref = -torch.log_softmax(logits[:-1], -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]

    out = subprocess.run([a.lorafit, "score", "--model", a.model, "--adapter", str(adapter), "--json",
                          "--input_ids", ",".join(map(str, ids))], check=True, capture_output=True, text=True).stdout
    ours = torch.tensor(json.loads(out)["token_nll"], dtype=torch.float64)
    diff = (ours - ref).abs().max().item()
    # fp32 forward of a 5-layer, C=64 model: per-logit error ~ a few 1e-6 relative; NLL is a
    # log-sum-exp over 512 logits, so 1e-4 absolute leaves a wide margin yet catches any wrong
    # scale, key or transposition (those move NLLs by > 1e-2).
    print(f"{nkeys} LoRA tensors, r {r}; {len(ids) - 1} tokens; max |NLL lorafit - PEFT| = {diff:.3e}; "
          f"mean NLL {ours.mean():.6f} vs {ref.mean():.6f}")
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
