"""Writes the safetensors writer/reader golden fixtures into tests/fixtures/formats/.

Regenerate (from the repository root):
    /opt/gv/bin/python tools/golden/make_formats_fixtures.py

Outputs:
  reference.safetensors           safetensors.torch.save_file (safetensors 0.4.5, torch 2.5.1):
                                  torch dtypes incl. BF16, F16, F8, I64, U8, BOOL, a scalar,
                                  a zero-size tensor, rank 5, names that sort interestingly
                                  (upper case, "10" < "2", UTF-8, quote/backslash, tab) and
                                  metadata {"format": "pt"}.
  reference_unsigned.safetensors  safetensors.serialize (the same Rust writer) for the dtypes
                                  torch cannot save (U16, U32, U64), mixed with others; no metadata.
  reference.json                  for each file: metadata and every tensor's name, dtype, shape and
                                  raw little-endian bytes (hex), in the order the script made them
                                  (not the file order), so the C++ test can rebuild and compare.

Only one metadata key is used: Python writes __metadata__ in Rust HashMap order, which
varies from run to run, so several keys have no reproducible byte layout.
"""
import json
import os

import torch
from safetensors import serialize
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "formats")

NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL", torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
}


def raw(t):
    # Bytes exactly as safetensors stores them (little-endian, row-major).
    return t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def main():
    g = torch.Generator().manual_seed(1234)
    r = lambda *s: torch.randn(*s, generator=g)
    tensors = {
        "b.weight": r(2, 3).to(torch.bfloat16),
        "a.bias": r(3).to(torch.float16),
        "ids": torch.tensor([0, -1, 2**40, 151643], dtype=torch.int64),
        "mask": torch.tensor([True, False, True, True, False]),
        "pixels": torch.tensor([[0, 255], [17, 128]], dtype=torch.uint8),
        "scalar": torch.tensor(3.25, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "Z_upper": r(2).to(torch.float64),
        "layer.10.w": r(2),
        "layer.2.w": r(2),
        "\u00e9_unicode": torch.tensor([-7], dtype=torch.int32),
        'quote"back\\slash': torch.tensor([-300], dtype=torch.int16),
        "tab\tname": torch.tensor([-5, 6], dtype=torch.int8),
        "f8": r(3).to(torch.float8_e4m3fn),
        "f8b": r(1).to(torch.float8_e5m2),
        "rank5": r(1, 2, 1, 2, 1),
    }
    metadata = {"format": "pt"}
    save_file(tensors, os.path.join(OUT, "reference.safetensors"), metadata=metadata)

    # dtypes torch cannot save: build the raw dict the Rust binding takes.
    unsigned = [
        ("u16", "uint16", "U16", [3], (40000).to_bytes(2, "little") * 3),
        ("u32", "uint32", "U32", [2], (3_000_000_000).to_bytes(4, "little") + (7).to_bytes(4, "little")),
        ("u64", "uint64", "U64", [1], (2**63 + 5).to_bytes(8, "little")),
        ("a_f32", "float32", "F32", [1], bytes.fromhex("0000803f")),
        ("b_bool", "bool", "BOOL", [2], bytes([1, 0])),
    ]
    blob = serialize({n: {"dtype": d, "shape": s, "data": b} for n, d, _, s, b in unsigned}, metadata=None)
    with open(os.path.join(OUT, "reference_unsigned.safetensors"), "wb") as f:
        f.write(blob)

    desc = {
        "reference.safetensors": {
            "metadata": metadata,
            "tensors": [{"name": n, "dtype": NAMES[t.dtype], "shape": list(t.shape), "hex": raw(t).hex()}
                        for n, t in tensors.items()],
        },
        "reference_unsigned.safetensors": {
            "metadata": {},
            "tensors": [{"name": n, "dtype": st, "shape": s, "hex": b.hex()} for n, _, st, s, b in unsigned],
        },
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(desc, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
