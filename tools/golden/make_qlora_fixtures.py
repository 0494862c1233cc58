"""QLoRA training reference fixtures: PEFT 0.13.2 on a bitsandbytes 4-bit model.

The base model is loaded by transformers 4.57.6 with BitsAndBytesConfig(load_in_4bit=True,
bnb_4bit_quant_type=nf4|fp4, bnb_4bit_use_double_quant, bnb_4bit_compute_dtype=float32): its
projections become bitsandbytes Linear4bit (quantized on the CPU by bitsandbytes 0.50.2), and
PEFT trains LoRA on top -- the real QLoRA stack, run on the CPU. The 20-step loop, data, and
the fixture format are make_train_fixtures.py's (tests/fixtures/train/README.md); case.json
gains "quant": {"quant_type", "double_quant", "compute_dtype"}.

bitsandbytes' Linear4bit has a CPU inference shortcut (a repacked AVX512-BF16 kernel when not
training and no grad is needed); it is switched off so every forward dequantizes to fp32 and
runs F.linear, as training does.

DoRA on the 4-bit base (qlora-*-dora, use_dora=True; the fixture format of make_dora_fixtures.py):
PEFT computes the weight norm from the dequantized weight (peft/utils/integrations.py
dequantize_module_weight -> dequantize_bnb_weight -> bitsandbytes.functional.dequantize_4bit).
PEFT 0.13.2's dequantize_bnb_weight moves a CPU weight to CUDA first (bitsandbytes had no CPU
dequantizer then); bitsandbytes 0.50.2 dequantizes on the CPU, so it is called there directly:
the same function on the same bytes, without the device round trip.

Run (repository root; requirements.txt + requirements-quant.txt, transformers 4.57.6):
    OMP_NUM_THREADS=1 /opt/nf4-venv/bin/python tools/golden/make_qlora_fixtures.py
(or, as the DoRA case was made, /opt/gv plus the overlay of tools/golden/requirements-qlora-overlay.txt.)
"""
import json
import os
import sys

os.environ["TORCHDYNAMO_DISABLE"] = "1"  # see make_quant_fixtures.py: compiled kernels flush denormals
import torch
import bitsandbytes as bnb
import peft
import transformers
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

sys.path.insert(0, os.path.dirname(__file__))
import make_train_fixtures as mtf  # noqa: E402
import make_dora_fixtures as mdf  # noqa: E402
import peft.utils.integrations as peft_integrations  # noqa: E402

QCASES = {
    "qlora-qwen2-nf4-dq": dict(
        model_dir="models/qwen2-gqa7-untied-f32", r=4, alpha=8, targets=mtf.ALL7, rslora=False,
        weight_decay=0.0, seed=21, data="random", dropout_stats=False, gradcheck_B_std=0.2,
        quant=dict(quant_type="nf4", double_quant=True)),
    "qlora-llama-fp4": dict(
        model_dir="models/llama-gqa2-f32", r=3, alpha=6, targets=["q_proj", "v_proj", "down_proj"],
        rslora=False, weight_decay=0.01, seed=22, data="random", dropout_stats=False,
        gradcheck_B_std=0.2, quant=dict(quant_type="fp4", double_quant=False)),
}
# DoRA on the NF4 + double-quantization base of qlora-qwen2-nf4-dq (same data, seed, init A).
QCASES["qlora-qwen2-nf4-dq-dora"] = dict(QCASES["qlora-qwen2-nf4-dq"], use_dora=True)


def dequantize_bnb_weight_cpu(weight, state=None):
    """peft.utils.integrations.dequantize_bnb_weight for a 4-bit weight, on the CPU."""
    assert weight.__class__.__name__ == "Params4bit", type(weight)
    return bnb.functional.dequantize_4bit(weight.data, weight.quant_state)


def build_qlora_peft(case, dropout):
    q = case["quant"]
    qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q["quant_type"],
                            bnb_4bit_use_double_quant=q["double_quant"],
                            bnb_4bit_compute_dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(mtf.model_path(case["model_dir"]), quantization_config=qc,
                                                dtype=torch.float32, device_map="cpu",
                                                attn_implementation="eager")
    n4 = 0
    for m in base.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
            n4 += 1
    assert n4 == 7 * base.config.num_hidden_layers, n4
    cfg = LoraConfig(task_type="CAUSAL_LM", r=case["r"], lora_alpha=case["alpha"],
                     lora_dropout=dropout, target_modules=list(case["targets"]),
                     use_rslora=case["rslora"], bias="none", use_dora=case.get("use_dora", False))
    torch.manual_seed(case["seed"])  # PEFT's kaiming-uniform A draws from the global RNG
    return get_peft_model(base, cfg)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    mtf.build_peft = build_qlora_peft
    mtf.CASES.update(QCASES)
    peft_integrations.dequantize_bnb_weight = dequantize_bnb_weight_cpu
    mdf.build_peft_dora = build_qlora_peft
    for name in sys.argv[1:] or list(QCASES):
        if QCASES[name].get("use_dora"):
            mdf.TRAIN_CASES[name] = name
            mdf.run_train_case(name)
        else:
            mtf.run_case(name)
        path = os.path.join(mtf.OUT, name, "case.json")
        with open(path) as f:
            doc = json.load(f)
        doc["quant"] = {**QCASES[name]["quant"], "compute_dtype": "float32",
                        "reference": f"transformers {transformers.__version__} + peft {peft.__version__} + "
                                     f"bitsandbytes {bnb.__version__} (Linear4bit on the CPU)"}
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
