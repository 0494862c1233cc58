"""Reference GGUF key/tensor lists from llama.cpp's own converters, for tests/cli/export.sh.

For each model of tests/fixtures/export/models (tools/golden/make_export_models.py) and each
--outtype f32/f16/bf16/q8_0: convert_hf_to_gguf.py on the folder (qwen2-tok gets the Qwen2.5
tokenizer files beside it, as the test does); for each adapter of
tests/fixtures/export/adapters: convert_lora_to_gguf.py --base <model> (f32 and q8_0).
Each result is summarised by tests/tools/gguf_read.py (keys with values, array hashes; tensor
names, dims, types and sha256 of the data) into tests/fixtures/export/ref/<name>.<kind>.json.

Known, deliberate difference: for an rsLoRA adapter (mistral-spm) the converter writes
adapter.lora.alpha = lora_alpha, so llama.cpp would scale by alpha/r instead of PEFT's
alpha/sqrt(r); lorafit writes alpha·sqrt(r) (= s·r). The reference is patched to that value and
says so in "lorafit_note".

Needs: llama.cpp's converter (vendor/llama.cpp of the llama-cpp-python 0.3.36 sdist:
  pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36; tar xzf ...),
the reference stack (/opt/gv: torch, transformers 4.46.3, safetensors) and sentencepiece
(tools/golden/requirements-export.txt). Run from the repository root:
  PYTHONPATH=<dir with sentencepiece> /opt/gv/bin/python tools/golden/make_export_fixtures.py LLAMA_CPP_DIR
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures", "export")
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import gguf_read  # noqa: E402

MODELS = ["qwen2-tok", "llama-spm", "mistral-spm"]
OUTTYPES = ["f32", "f16", "bf16", "q8_0"]
LORA_OUTTYPES = ["f32", "q8_0"]


def assemble(name, work):
    d = os.path.join(work, name)
    shutil.copytree(os.path.join(FIX, "models", name), d)
    if name == "qwen2-tok":
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(ROOT, "tests", "data", "qwen-tokenizer", "qwen2.5", f), d)
    return d


def run(cmd):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")


def save(summary, out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    lc = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        for name in MODELS:
            model = assemble(name, work)
            for t in OUTTYPES:
                out = os.path.join(work, f"{name}.{t}.gguf")
                run([sys.executable, os.path.join(lc, "convert_hf_to_gguf.py"), model, "--outtype", t, "--outfile", out])
                save(gguf_read.summary(out), os.path.join(FIX, "ref", f"{name}.{t}.json"))
                print(f"{name} {t}")
            adapter = os.path.join(work, "adapters", name)
            shutil.copytree(os.path.join(FIX, "adapters", name), adapter)
            with open(os.path.join(adapter, "adapter_config.json")) as f:
                acfg = json.load(f)
            for t in LORA_OUTTYPES:
                out = os.path.join(work, f"{name}.lora.{t}.gguf")
                run([sys.executable, os.path.join(lc, "convert_lora_to_gguf.py"), adapter, "--base", model,
                     "--outtype", t, "--outfile", out])
                s = gguf_read.summary(out)
                if acfg.get("use_rslora"):
                    for kv in s["kv"]:
                        if kv[0] == "adapter.lora.alpha":
                            kv[2] = gguf_read.struct.unpack(
                                "<f", gguf_read.struct.pack("<f", acfg["lora_alpha"] * math.sqrt(acfg["r"])))[0]
                    s["lorafit_note"] = ("rsLoRA: adapter.lora.alpha patched from lora_alpha to lora_alpha*sqrt(r) "
                                         "so that llama.cpp's alpha/r scale equals PEFT's alpha/sqrt(r)")
                save(s, os.path.join(FIX, "ref", f"{name}.lora.{t}.json"))
                print(f"{name} lora {t}")


if __name__ == "__main__":
    main()
