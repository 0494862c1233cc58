"""A GGUF reader in the Python standard library only (CI has no gguf package).

summary(path) -> {"kv": [[key, type, value]...], "tensors": [[name, dims, type, sha256]...]}
in file order. Scalars and strings are given as values; arrays as
{"array": elem_type, "n": count, "sha256": hash of the array's bytes as stored} (token lists
and merges are 100k+ entries) plus "head": the first 8 elements. dims are GGUF (ggml) order:
dims[0] is the innermost (row) length. sha256 is over each tensor's data bytes (unpadded).

Also a command line: python3 gguf_read.py FILE  (prints the summary as JSON).
"""
import hashlib
import json
import struct
import sys

SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
TYPE_NAMES = {0: "UINT8", 1: "INT8", 2: "UINT16", 3: "INT16", 4: "UINT32", 5: "INT32", 6: "FLOAT32", 7: "BOOL",
              8: "STRING", 9: "ARRAY", 10: "UINT64", 11: "INT64", 12: "FLOAT64"}
# ggml types: (name, block elements, block bytes)
GGML = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 8: ("Q8_0", 32, 34), 30: ("BF16", 1, 2)}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError(f"truncated at byte {self.p} (wanted {n} more)")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def u(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        return self.take(self.u("Q")).decode("utf-8")

    def value(self, t):
        if t in SCALAR:
            return self.u(SCALAR[t])
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.u("I"), self.u("Q")
            start = self.p
            head = [self.value(et) for _ in range(n)]
            raw = self.d[start:self.p]
            return {"array": TYPE_NAMES[et], "n": n, "sha256": hashlib.sha256(raw).hexdigest(), "head": head[:8]}
        raise ValueError(f"unknown GGUF value type {t}")


def summary(path):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    if r.take(4) != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    version = r.u("I")
    n_tensors, n_kv = r.u("Q"), r.u("Q")
    kv, align = [], 32
    for _ in range(n_kv):
        key, t = r.string(), r.u("I")
        v = r.value(t)
        if isinstance(v, float):
            v = struct.unpack("<f", struct.pack("<f", v))[0] if t == 6 else v
        kv.append([key, TYPE_NAMES[t], v])
        if key == "general.alignment":
            align = v
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.u("I")
        dims = [r.u("Q") for _ in range(nd)]
        infos.append((name, dims, r.u("I"), r.u("Q")))
    base = (r.p + align - 1) // align * align
    tensors = []
    for name, dims, t, off in infos:
        tname, be, bb = GGML[t]
        n = 1
        for d in dims:
            n *= d
        nbytes = n // be * bb
        if off % align or base + off + nbytes > len(data):
            raise ValueError(f"{path}: tensor {name} offset {off} out of range or misaligned")
        tensors.append([name, dims, tname, hashlib.sha256(data[base + off:base + off + nbytes]).hexdigest()])
    return {"version": version, "kv": kv, "tensors": tensors}


def tensor_bytes(path, name):
    """The raw data bytes of one tensor (for value comparisons)."""
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    r.take(4)
    r.u("I")
    n_tensors, n_kv = r.u("Q"), r.u("Q")
    align = 32
    for _ in range(n_kv):
        key, t = r.string(), r.u("I")
        v = r.value(t)
        if key == "general.alignment":
            align = v
    found = None
    for _ in range(n_tensors):
        tn = r.string()
        nd = r.u("I")
        dims = [r.u("Q") for _ in range(nd)]
        t, off = r.u("I"), r.u("Q")
        if tn == name:
            found = (dims, t, off)
    base = (r.p + align - 1) // align * align
    dims, t, off = found
    _, be, bb = GGML[t]
    n = 1
    for d in dims:
        n *= d
    return dims, GGML[t][0], data[base + off:base + off + n // be * bb]


if __name__ == "__main__":
    json.dump(summary(sys.argv[1]), sys.stdout, indent=1, ensure_ascii=False)
    print()
