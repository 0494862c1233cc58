"""Pre-quantized bitsandbytes 4-bit checkpoints, as transformers saves them, and their logits.

Two tiny fixture models are loaded by transformers 4.57.6 with a BitsAndBytesConfig (their
projections quantized on the CPU by bitsandbytes 0.50.2), saved with model.save_pretrained
(config.json gains `quantization_config`; each quantized Linear's weight is the packed codes
plus `.absmax`, `.quant_map`, `.quant_state.bitsandbytes__<type>` and, with double
quantization, `.nested_absmax`, `.nested_quant_map`), then loaded back from that folder as a
user would (from_pretrained(folder), no quantization_config argument) to compute the logits of
fixed token ids.

Writes:
  tests/fixtures/models/qwen2-bnb-nf4-dq/   from qwen2-untied-bf16: nf4, double quantization,
        compute dtype bfloat16, quant_storage bfloat16 (the packed bytes stored as BF16 elements,
        as FSDP-QLoRA saves them)
  tests/fixtures/models/llama-bnb-fp4/      from llama-gqa2-f32: fp4, no double quantization,
        compute dtype float32, quant_storage uint8, llm_int8_skip_modules ["lm_head",
        "model.layers.1.mlp.down_proj"] (one projection stays fp32)
  tests/fixtures/models/stories260K-bnb-nf4/ from tests/data/stories260K (a pretrained tiny qwen2,
        tied embeddings): nf4, double quantization, compute dtype float32, plus its tokenizer files
        (for the CLI tests)

transformers 4.57.6 casts a stored weight to the model's dtype by value on load, packed ones
too: a quant_storage other than uint8 reloads correctly only when it equals the model dtype
(bf16 storage in a fp32 model becomes other bytes and bitsandbytes then fails). The qwen2 case
is bf16 throughout.
  tests/fixtures/prequant/<name>.safetensors: `ids` (B, T) I32, `logits` (B, T, V) F32 of the
        reloaded model, and `<param>.dequant` F32: bitsandbytes' dequantize_4bit of layer 0's quantized
        weights (to fp32), what lorafit's dequantization must equal bit for bit
  tests/fixtures/prequant/index.json: per case the source model, settings, and dtype of the run

bitsandbytes' CPU inference shortcut (AVX512-BF16 repacking) is switched off, so the forward
dequantizes (gemm_4bit: code[q]·absmax straight to the compute dtype) and runs F.linear. Its C++
CPU dequantizer, with AVX-512, indexes absmax per row when a row's length is a multiple of 16
but not of 64 (row·(cols//64) + k: make_quant_fixtures.py), which disagrees with its own
quantizer and with its CUDA kernels; the qwen2 fixture's rows of 96 hit it. The script therefore
puts bitsandbytes' default (flat-block) dequantizer, _dequantize_4bit_compute, in its place: the
blocks a GPU computes, and what lorafit implements. (Its code book has +0 for FP4 code 8, where
the C++ and CUDA kernels give -0: the same sums.)

Run (repository root):
    python3 -m venv /opt/nf4-venv && /opt/nf4-venv/bin/pip install -r tools/golden/requirements-models.txt \
      && /opt/nf4-venv/bin/pip install --no-deps -r tools/golden/requirements-quant.txt
    OMP_NUM_THREADS=1 /opt/nf4-venv/bin/python tools/golden/make_prequant_fixtures.py
"""
import copy
import json
import os
import shutil
import types

os.environ["TORCHDYNAMO_DISABLE"] = "1"  # see make_quant_fixtures.py: compiled kernels flush denormals
import torch
import bitsandbytes as bnb
import bitsandbytes.functional as F
import transformers
from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
from bitsandbytes.backends.utils import _get_4bit_code
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")
CASES = {
    "qwen2-bnb-nf4-dq": dict(src="qwen2-untied-bf16", dtype=torch.bfloat16, quant_type="nf4", double_quant=True,
                             compute=torch.bfloat16, storage=torch.bfloat16, skip=None),
    "llama-bnb-fp4": dict(src="llama-gqa2-f32", dtype=torch.float32, quant_type="fp4", double_quant=False,
                          compute=torch.float32, storage=torch.uint8,
                          skip=["lm_head", "model.layers.1.mlp.down_proj"]),
    # A real (pretrained) tiny model with a tokenizer, for the CLI tests (train, generate, merge).
    "stories260K-bnb-nf4": dict(src="data:stories260K", dtype=torch.float32, quant_type="nf4", double_quant=True,
                                compute=torch.float32, storage=torch.uint8, skip=None,
                                copy=["tokenizer.json", "tokenizer_config.json"]),
}


def _flat_blocks(A, absmax, blocksize, quant_type, shape, dtype):
    if A.dtype != torch.uint8:
        A = A.view(torch.uint8)
    return _dequantize_4bit_compute(A.reshape(-1), absmax, _get_4bit_code(quant_type, A.device), blocksize, shape, dtype)


# torch.library refuses a second CPU kernel for the op; every caller (gemm_4bit's default kernel,
# F.dequantize_4bit) looks it up as torch.ops.bitsandbytes.dequantize_4bit.default at call time.
torch.ops.bitsandbytes.dequantize_4bit = types.SimpleNamespace(default=_flat_blocks)


def no_cpu_shortcut(model):
    n = 0
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
            n += 1
    return n


def make(name, c):
    qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=c["quant_type"],
                            bnb_4bit_use_double_quant=c["double_quant"], bnb_4bit_compute_dtype=c["compute"],
                            bnb_4bit_quant_storage=c["storage"], llm_int8_skip_modules=c["skip"])
    src = (os.path.join(ROOT, "..", "data", c["src"][5:]) if c["src"].startswith("data:")
           else os.path.join(ROOT, "models", c["src"]))
    model = AutoModelForCausalLM.from_pretrained(src, quantization_config=qc, dtype=c["dtype"], device_map="cpu",
                                                 attn_implementation="eager")
    out = os.path.join(ROOT, "models", name)
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    for f in os.listdir(out):  # keep config.json + model.safetensors (generation_config.json too)
        if f not in ("config.json", "model.safetensors", "generation_config.json"):
            os.remove(os.path.join(out, f))
    for f in c.get("copy", []):
        shutil.copy(os.path.join(src, f), os.path.join(out, f))

    # Reload from the folder alone, as a user of the checkpoint does.
    re = AutoModelForCausalLM.from_pretrained(out, dtype=c["dtype"], device_map="cpu", attn_implementation="eager")
    n4 = no_cpu_shortcut(re)
    re.eval()
    cfg = re.config
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, cfg.vocab_size, (2, 11), generator=g)
    with torch.no_grad():
        logits = re(input_ids=ids).logits.float()
    tensors = {"ids": ids.to(torch.int32).contiguous(), "logits": logits.contiguous()}
    for pname, m in re.named_modules():
        if isinstance(m, bnb.nn.Linear4bit) and pname.startswith("model.layers.0."):
            # To fp32 (dequantize_4bit would round to quant_state.dtype): gemm_4bit's values before
            # their one rounding to the compute dtype.
            qs = copy.copy(m.weight.quant_state)
            qs.dtype = torch.float32
            tensors[pname + ".weight.dequant"] = F.dequantize_4bit(m.weight.data, qs).contiguous()
    os.makedirs(os.path.join(ROOT, "prequant"), exist_ok=True)
    save_file(tensors, os.path.join(ROOT, "prequant", name + ".safetensors"))
    return {"src": c["src"], "dtype": str(c["dtype"]).replace("torch.", ""), "quant_type": c["quant_type"],
            "double_quant": c["double_quant"], "compute_dtype": str(c["compute"]).replace("torch.", ""),
            "quant_storage": str(c["storage"]).replace("torch.", ""), "skip_modules": c["skip"],
            "quantized_linears": n4}


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    index = {"transformers": transformers.__version__, "bitsandbytes": bnb.__version__,
             "torch": torch.__version__, "cases": {}}
    for name, c in CASES.items():
        index["cases"][name] = make(name, c)
    with open(os.path.join(ROOT, "prequant", "index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
