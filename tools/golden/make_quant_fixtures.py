"""4-bit quantization fixtures from bitsandbytes (tests/fixtures/quant/quant4.*).

Run: OMP_NUM_THREADS=1 /opt/nf4-venv/bin/python tools/golden/make_quant_fixtures.py
(requirements-quant.txt; one thread: torch's fp32 mean, the double-quantization offset, sums
in per-thread chunks above 32768 values otherwise).

For every case: the input weight, bitsandbytes' quantize_4bit(blocksize=64) outputs (packed
bytes, absmax, or with compress_statistics the 8-bit absmax codes, nested absmax and offset)
and the dequantized values in bf16 and fp32. The dequantized reference is bitsandbytes'
_dequantize_4bit_compute (its default kernel, = the CUDA kernel's flat blocks). Its C++ CPU
kernel agrees wherever a row is a multiple of 64 long; with an AVX-512 CPU and rows not a
multiple of 64 it indexes absmax per row (row·(cols//64) + k) and so disagrees with its own
quantizer -- the script records where (`cpu_kernel_agrees`)."""
import json, os, struct, sys

# No torch.compile: bitsandbytes compiles its default dequantize kernel, and the compiled code
# (fast-math) turns on flush-to-zero for the process, after which quantize_4bit's clamp of an
# all-zero block to 1e-38 (a denormal) reads as 0 and the block's codes become NaN buckets.
os.environ["TORCHDYNAMO_DISABLE"] = "1"
import torch
import bitsandbytes as bnb
import bitsandbytes.functional as F
from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "quant")
torch.manual_seed(1234)


def real_like(rows, cols, dtype):
    # A trained projection's look: std 0.02 with a few large outliers and an all-zero block.
    w = torch.randn(rows, cols) * 0.02
    idx = torch.randint(0, rows * cols, (max(1, rows * cols // 4000),))
    w.view(-1)[idx] *= 40
    w.view(-1)[64:128] = 0
    return w.to(dtype)


CASES = [  # name, weight, quant type, double quant
    ("randn_nf4", torch.randn(8, 128, dtype=torch.bfloat16), "nf4", False),
    ("randn_fp4", torch.randn(8, 128, dtype=torch.bfloat16), "fp4", False),
    ("randn_nf4_dq", torch.randn(16, 256, dtype=torch.bfloat16), "nf4", True),
    ("f32_fp4_dq", torch.randn(24, 160) * 3, "fp4", True),
    ("rows100_nf4_dq", torch.randn(7, 100, dtype=torch.bfloat16), "nf4", True),
    ("rows100_fp4", torch.randn(7, 100, dtype=torch.bfloat16), "fp4", False),
    ("odd45_nf4", torch.randn(3, 45, dtype=torch.bfloat16), "nf4", False),
    ("odd45_fp4_dq", torch.randn(3, 45, dtype=torch.bfloat16), "fp4", True),
    ("qwen_k896_nf4_dq", real_like(128, 896, torch.bfloat16), "nf4", True),
    ("qwen_k896_fp4_dq", real_like(128, 896, torch.bfloat16), "fp4", True),
    ("big_896_nf4_dq", real_like(320, 896, torch.bfloat16), "nf4", True),  # 4480 absmax values
    ("qwen_down4864_nf4", real_like(16, 4864, torch.bfloat16), "nf4", False),
]


def lcg(n):
    # x_i = ((i · 2654435761) mod 2^24) / 2^24 − 0.25, exactly representable; the C++ test makes the same.
    i = torch.arange(n, dtype=torch.int64)
    return ((i * 2654435761) % (1 << 24)).to(torch.float64).div(1 << 24).sub(0.25).float()


def sums():
    # torch's fp32 sum (its cascade; the double-quantization offset is sum / n) on lengths that
    # reach every branch: scalar (< 8), vector tail, each cascade level (4096·32 values and more).
    out = []
    for n in (1, 3, 5, 7, 8, 9, 31, 33, 100, 1000, 4097, 65536, 140000, 600001):
        x = lcg(n)
        s = x.sum()
        out.append({"n": n, "sum_bits": struct.unpack("<I", struct.pack("<f", s.item()))[0],
                    "mean_bits": struct.unpack("<I", struct.pack("<f", x.mean().item()))[0]})
    return out


def main():
    tensors, meta = {}, []
    for name, w, qt, dq in CASES:
        q, s = F.quantize_4bit(w, blocksize=64, quant_type=qt, compress_statistics=dq)
        tensors[f"{name}.input"] = w.contiguous()
        tensors[f"{name}.packed"] = q.reshape(-1).contiguous()
        if dq:
            absmax = F.dequantize_blockwise(s.absmax, s.state2)
            absmax += s.offset
            tensors[f"{name}.qabsmax"] = s.absmax.contiguous()
            tensors[f"{name}.nested_absmax"] = s.state2.absmax.contiguous()
            tensors[f"{name}.offset"] = s.offset.reshape(1).float().contiguous()
            tensors[f"{name}.nested_code"] = s.state2.code.contiguous()
        else:
            absmax = s.absmax
            tensors[f"{name}.absmax"] = s.absmax.contiguous()
        tensors[f"{name}.code"] = s.code.contiguous()
        agree = True
        for dt, tag in ((torch.bfloat16, "bf16"), (torch.float32, "f32"))[: 1 if w.numel() > 20000 else 2]:
            ref = _dequantize_4bit_compute(q.reshape(-1), absmax.float(), s.code, 64, w.shape, dt)
            tensors[f"{name}.dequant_{tag}"] = ref.contiguous()
            s.dtype = dt
            agree = agree and torch.equal(F.dequantize_4bit(q, s), ref)
        meta.append({"name": name, "shape": list(w.shape), "dtype": str(w.dtype).split(".")[1],
                     "quant_type": qt, "double_quant": dq, "cpu_kernel_agrees": agree})
    save_file(tensors, os.path.join(OUT, "quant4.safetensors"))
    info = {"bitsandbytes": bnb.__version__, "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cases": meta, "sums": sums()}
    with open(os.path.join(OUT, "quant4.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
