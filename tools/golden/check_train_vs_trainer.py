"""Replay each training fixture through the real transformers Trainer and compare.

make_train_fixtures.py writes its loop by hand; this script is the evidence that the loop
follows Trainer 4.46.3 semantics: the same initial LoRA weights and the same micro-batches,
in the same order (SequentialSampler, one pre-collated micro-batch per dataset item), through
Trainer(max_steps=20, gradient_accumulation_steps=4, logging_steps=1, ...). It checks the
logged loss (Trainer rounds to 4 decimals), grad_norm and learning_rate of every step and
the final LoRA weights against tests/fixtures/train/<case>/. It writes nothing.

Run (from the repository root, after make_train_fixtures.py):
    /opt/gv/bin/python tools/golden/check_train_vs_trainer.py
"""
import json
import os
import sys
import tempfile

import torch
import transformers
from safetensors.torch import load_file
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainingArguments

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_fixtures import CASES, OUT, build_peft, lora_params, set_params  # noqa: E402
import make_train_recent  # noqa: E402,F401  (adds the issue-13 cases to CASES)


class OrderedTrainer(Trainer):
    def _get_train_sampler(self, *args):  # transformers >= 4.53 passes the dataset
        return SequentialSampler(self.train_dataset)


def check(name):
    with open(os.path.join(OUT, name, "case.json")) as f:
        doc = json.load(f)
    t = load_file(os.path.join(OUT, name, "tensors.safetensors"))
    case = CASES[name]
    model = build_peft(case, 0.0)
    params = lora_params(model)
    init = {k: t[f"init.{k}"] for k in params}
    set_params(params, init)
    n = doc["data"]["num_micro_batches"]
    data = [{"input_ids": t[f"ids.{k}"], "attention_mask": t[f"attention_mask.{k}"],
             "labels": t[f"labels.{k}"]} for k in range(n)]
    o = doc["optim"]
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, max_steps=o["num_steps"], gradient_accumulation_steps=o["grad_accum"],
            per_device_train_batch_size=1, learning_rate=o["lr"], weight_decay=o["weight_decay"],
            adam_beta1=o["betas"][0], adam_beta2=o["betas"][1], adam_epsilon=o["eps"],
            max_grad_norm=o["max_grad_norm"], lr_scheduler_type="linear",
            warmup_steps=o["warmup_steps"], logging_steps=1, save_strategy="no", report_to=[],
            use_cpu=True, remove_unused_columns=False, disable_tqdm=True,
            dataloader_num_workers=0, optim="adamw_torch")
        trainer = OrderedTrainer(model=model, args=args, train_dataset=data,
                                 data_collator=lambda items: items[0])
        trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h and "grad_norm" in h]
    assert len(logs) == len(doc["steps"]), (len(logs), len(doc["steps"]))
    worst = {"loss": 0.0, "grad_norm": 0.0, "learning_rate": 0.0, "final": 0.0}
    # transformers 4.46 logs the learning rate after the scheduler step; 4.57 the one the step
    # applied (the fixtures keep both).
    lr_key = "learning_rate" if transformers.__version__.startswith("4.46") else "lr_applied"
    for h, s in zip(logs, doc["steps"]):
        # Logged with 4 decimals from an fp32 running sum: a fixture loss within 1e-6 of a
        # rounding boundary may round the other way, so allow half a unit of the 4th decimal.
        assert abs(h["loss"] - s["loss"]) <= 0.5e-4 + 1e-6, (name, h, s)
        worst["grad_norm"] = max(worst["grad_norm"],
                                 abs(h["grad_norm"] - s["grad_norm"]) / s["grad_norm"])
        worst["learning_rate"] = max(worst["learning_rate"],
                                     abs(h["learning_rate"] - s[lr_key]))
    for k, p in lora_params(model).items():
        ref = t[f"final.{k}"]
        worst["final"] = max(worst["final"], (p.detach() - ref).abs().max().item())
    print(f"{name}: 20 logged losses equal (4 decimals); max rel grad_norm diff "
          f"{worst['grad_norm']:.3g}; max lr diff {worst['learning_rate']:.3g}; "
          f"max |final - fixture| {worst['final']:.3g}")
    assert worst["grad_norm"] < 1e-5 and worst["learning_rate"] == 0.0
    assert worst["final"] < 1e-6


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    for name in sys.argv[1:] or list(CASES):
        check(name)


if __name__ == "__main__":
    main()
