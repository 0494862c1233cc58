"""LoRA training fixtures (20 steps, Trainer semantics + PEFT) for the issue-13 models: Qwen3
(q_norm/k_norm on the path of every q/k gradient) and Llama with llama3 RoPE, from
transformers 4.57.6 + PEFT 0.17.1 (tools/golden/requirements-models.txt). Same loop and file
format as make_train_fixtures.py (see its docstring); check_train_vs_trainer.py replays them
through the real Trainer:

    /opt/models-venv/bin/python tools/golden/make_train_recent.py
    /opt/models-venv/bin/python tools/golden/check_train_vs_trainer.py qwen3-gqa-tied-f32 llama31-rope-f32
"""
import sys

import torch

import make_train_fixtures as mt

RECENT = {
    "qwen3-gqa-tied-f32": dict(
        model_dir="models/qwen3-gqa-tied-f32", r=4, alpha=8, targets=mt.ALL7, rslora=False,
        weight_decay=0.0, seed=21, data="random", dropout_stats=False, gradcheck_B_std=0.2),
    "llama31-rope-f32": dict(
        model_dir="models/llama31-rope-f32", r=4, alpha=4, targets=["q_proj", "k_proj", "v_proj", "o_proj"],
        rslora=False, weight_decay=0.01, seed=22, data="random", dropout_stats=False, gradcheck_B_std=0.2),
}
mt.CASES.update(RECENT)


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    for name in sys.argv[1:] or list(RECENT):
        mt.run_case(name)


if __name__ == "__main__":
    main()
