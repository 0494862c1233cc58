"""Reads files written by `lorafit export` with the `gguf` package from PyPI (llama.cpp's own
gguf-py reader) and checks them against the converter references of tests/fixtures/export/ref:
every key (name, type, scalar value, array length and elements), every tensor (name, shape,
type, data sha256). Not part of CI (CI has no gguf package; tests/cli/export.sh uses the
stdlib reader tests/tools/gguf_read.py for the same comparison).

  /opt/export-venv/bin/python tools/export/check_with_gguf.py build/lorafit
(venv: python3 -m venv /opt/export-venv && /opt/export-venv/bin/pip install gguf==0.19.0 numpy)
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import gguf

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures", "export")
TYPES = {gguf.GGUFValueType.UINT32: "UINT32", gguf.GGUFValueType.INT32: "INT32", gguf.GGUFValueType.FLOAT32: "FLOAT32",
         gguf.GGUFValueType.BOOL: "BOOL", gguf.GGUFValueType.STRING: "STRING", gguf.GGUFValueType.ARRAY: "ARRAY"}


def check(path, ref_path):
    ref = json.load(open(ref_path, encoding="utf-8"))
    r = gguf.GGUFReader(path)
    errors = []
    fields = [f for f in r.fields.values() if not f.name.startswith("GGUF.")]
    if [f.name for f in fields] != [k[0] for k in ref["kv"]]:
        errors.append(f"key names differ: {[f.name for f in fields]} vs {[k[0] for k in ref['kv']]}")
    for f, (name, typ, val) in zip(fields, ref["kv"]):
        if TYPES.get(f.types[0]) != typ:
            errors.append(f"{name}: type {f.types[0]} vs {typ}")
        elif typ == "ARRAY":
            n = len(f.data)
            if n != val["n"]:
                errors.append(f"{name}: {n} elements vs {val['n']}")
            head = [f.contents(i) for i in range(min(8, n))]
            if head != val["head"]:
                errors.append(f"{name}: first elements {head} vs {val['head']}")
        else:
            got = f.contents()
            if isinstance(got, float) and isinstance(val, float):
                ok = abs(got - val) <= 1e-7 * max(1.0, abs(val))
            else:
                ok = got == val
            if not ok:
                errors.append(f"{name}: {got!r} vs {val!r}")
    got_t = [[t.name, [int(x) for x in t.shape], t.tensor_type.name, hashlib.sha256(bytes(t.data.tobytes())).hexdigest()]
             for t in r.tensors]
    if got_t != ref["tensors"]:
        errors.append(f"tensors differ: {got_t[:3]} ... vs {ref['tensors'][:3]} ...")
    return errors


def main():
    lorafit = os.path.abspath(sys.argv[1])
    bad = 0
    with tempfile.TemporaryDirectory() as work:
        for name in ("qwen2-tok", "llama-spm", "mistral-spm"):
            m = os.path.join(work, name)
            shutil.copytree(os.path.join(FIX, "models", name), m)
            if name == "qwen2-tok":
                for f in ("tokenizer.json", "tokenizer_config.json"):
                    shutil.copy(os.path.join(ROOT, "tests", "data", "qwen-tokenizer", "qwen2.5", f), m)
            a = os.path.join(work, "adapters", name)
            shutil.copytree(os.path.join(FIX, "adapters", name), a)
            cases = [(t, ["--format", "gguf", "--outtype", t, "--modelfile", "false"], f"{name}.{t}.json")
                     for t in ("f32", "f16", "bf16", "q8_0")]
            cases += [(f"lora-{t}", ["--adapter", a, "--format", "gguf-lora", "--outtype", t], f"{name}.lora.{t}.json")
                      for t in ("f32", "q8_0")]
            for tag, args, ref in cases:
                out = os.path.join(work, f"{name}.{tag}.gguf")
                subprocess.run([lorafit, "export", "--model", m, "--output", out, *args], check=True,
                               capture_output=True)
                errors = check(out, os.path.join(FIX, "ref", ref))
                print(f"{name:12} {tag:9} {'read by the gguf package: equal' if not errors else 'DIFFERS'}")
                for e in errors:
                    print("   ", e)
                bad += bool(errors)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
