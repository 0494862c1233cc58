"""The fixture models' config.json as transformers 5 saves them (rope_parameters, dtype,
layer_types): loads each tests/fixtures/models/<name>/config.json (written by transformers 4)
with transformers 5.24's config classes and writes config.tf5.json beside it. The forward
test runs each model with both files and requires identical logits.

    /opt/models-venv5/bin/python tools/golden/make_tf5_configs.py
"""
import json
import os
import sys
import tempfile

from transformers import AutoConfig

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
NAMES = ["qwen3-gqa-tied-f32", "qwen3-untied-bf16", "llama31-rope-f32", "qwen2-yarn-f32", "qwen2-gqa7-untied-f32",
         "llama-gqa2-f32"]


def main():
    for name in sys.argv[1:] or NAMES:
        src = os.path.join(MODELS, name)
        cfg = AutoConfig.from_pretrained(src)
        with tempfile.TemporaryDirectory() as d:
            cfg.save_pretrained(d)
            with open(os.path.join(d, "config.json")) as f:
                text = f.read()
        assert "rope_parameters" in json.loads(text), name
        with open(os.path.join(src, "config.tf5.json"), "w") as f:
            f.write(text)
        print(f"{name}: rope_parameters = {json.loads(text)['rope_parameters']}")


if __name__ == "__main__":
    main()
