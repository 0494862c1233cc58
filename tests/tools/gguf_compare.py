"""Compares GGUF files (python3 standard library only).

  gguf_compare.py ref REF.json FILE.gguf
      FILE's keys (names, types, values, in order) and tensors (names, dims, ggml types, sha256
      of the data, in order) must equal REF (written from llama.cpp's converter by
      tools/golden/make_export_fixtures.py). REF may list "ignore_keys".
  gguf_compare.py tensors A.gguf B.gguf
      the two files' tensor lists (names, dims, types, data) must be equal.
Exit 0 when equal; otherwise prints every difference and exits 1.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_read  # noqa: E402


def diff_lists(what, want, got, errors):
    for i in range(max(len(want), len(got))):
        w = want[i] if i < len(want) else None
        g = got[i] if i < len(got) else None
        if w != g:
            errors.append(f"{what} #{i}: expected {json.dumps(w, ensure_ascii=False)[:300]}\n"
                          f"{' ' * len(what)}      got {json.dumps(g, ensure_ascii=False)[:300]}")


def main():
    mode, a, b = sys.argv[1:4]
    errors = []
    if mode == "ref":
        with open(a, encoding="utf-8") as f:
            ref = json.load(f)
        got = gguf_read.summary(b)
        ignore = set(ref.get("ignore_keys", []))
        diff_lists("key", [k for k in ref["kv"] if k[0] not in ignore], [k for k in got["kv"] if k[0] not in ignore], errors)
        diff_lists("tensor", ref["tensors"], got["tensors"], errors)
    elif mode == "tensors":
        diff_lists("tensor", gguf_read.summary(a)["tensors"], gguf_read.summary(b)["tensors"], errors)
    else:
        sys.exit(f"unknown mode {mode}")
    if errors:
        print(f"{b}: {len(errors)} difference(s)")
        print("\n".join(errors[:40]))
        sys.exit(1)
    print(f"{b}: equal")


if __name__ == "__main__":
    main()
