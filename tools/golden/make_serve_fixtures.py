"""Reference logprobs for `lorafit serve` (tests/cli/serve_check.py), from transformers 4.46.3 +
peft 0.13.2 (CPU, fp32, eager attention).

Writes tests/fixtures/serve/logprobs.json: for stories260K alone and with the
stories260K-qv-rslora adapter (unmerged, eval), a prompt of token ids and its greedy
continuation of 8 tokens, each step with the chosen id, its log-probability and the 5 most
likely ids with theirs: log_softmax of the raw logits (what vLLM returns by default,
logprobs_mode "raw_logprobs"), computed in float64 from the fp32 logits.

Regenerate (from the repository root):
    /opt/gv/bin/python tools/golden/make_serve_fixtures.py
"""
import json
import os

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STORIES = os.path.join(ROOT, "tests", "data", "stories260K")
ADAPTER = os.path.join(ROOT, "tests", "fixtures", "adapter", "stories260K-qv-rslora")
OUT = os.path.join(ROOT, "tests", "fixtures", "serve", "logprobs.json")
PROMPT = [1, 403, 407, 261, 378]
NEW, TOP = 8, 5


def greedy_logprobs(model):
    ids = torch.tensor([PROMPT])
    steps = []
    with torch.no_grad():
        for _ in range(NEW):
            logits = model(input_ids=ids).logits[0, -1].double()
            lp = torch.log_softmax(logits, dim=-1)
            chosen = int(torch.argmax(logits))
            vals, idx = torch.topk(lp, TOP)
            steps.append({"id": chosen, "logprob": float(lp[chosen]),
                          "top": [[int(i), float(v)] for i, v in zip(idx, vals)]})
            ids = torch.cat([ids, torch.tensor([[chosen]])], dim=1)
    return steps


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    base = AutoModelForCausalLM.from_pretrained(STORIES, torch_dtype=torch.float32, attn_implementation="eager").eval()
    cases = [{"model": "base", "prompt_ids": PROMPT, "steps": greedy_logprobs(base)}]
    adapted = PeftModel.from_pretrained(base, ADAPTER).eval()
    cases.append({"model": "a1", "prompt_ids": PROMPT, "steps": greedy_logprobs(adapted)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
