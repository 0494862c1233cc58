"""Forward-pass reference fixtures from transformers 4.46.3 (eager attention, CPU).

Writes, under tests/fixtures/forward/:
  <name>.safetensors   input_ids I64 (B,T); logits F32 (B,T,V); hidden_states.{i} F32 (B,T,C)
                       for i = 0..L; logits_bf16 F32 (B,T,V) for bf16-weight models only.
  index.json           [{name, model_dir, dtype, has_logits_bf16, ...}]
  greedy.json          greedy continuations (20 new ids) for stories260K and two fixture models
  stories260K_nll.json per-token NLL of a few texts under stories260K (needs
                       tests/data/stories260K/tokenizer.json; skipped with a note if absent)

Regenerate (from the repository root, after tools/golden/make_models.py):
    /opt/gv/bin/python tools/golden/make_forward_fixtures.py
"""
import json
import math
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, GenerationConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import MODELS  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "forward")
STORIES = os.path.join(ROOT, "tests", "data", "stories260K")

# name -> (model dir, dir as written in index.json, batch, time, seed)
CASES = {name: (os.path.join(FIX, "models", name), f"models/{name}", 2, 13 + i, 200 + i)
         for i, name in enumerate(MODELS)}
CASES["stories260K"] = (STORIES, "data:stories260K", 2, 19, 299)

NLL_TEXTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "Tom had a red ball. He liked to throw it to his dog, Max.",
    "One day, a big bird flew over the tree and sang a happy song.",
    "The sun was hot, so Mia and her mom went to the park to eat ice cream.",
    "Ben was sad because he lost his toy. His friend helped him find it under the bed.",
]


def load(model_dir, dtype):
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=dtype,
                                                 attn_implementation="eager")
    model.eval()
    return model


def weights_dtype(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)  # transformers >= 4.56 writes dtype instead of torch_dtype
        return cfg.get("torch_dtype") or cfg.get("dtype") or "float32"


def forward_case(name):
    model_dir, index_dir, B, T, seed = CASES[name]
    wdtype = weights_dtype(model_dir)
    model = load(model_dir, torch.float32)  # bf16 files: exact upcast to fp32
    V = model.config.vocab_size
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
    tensors = {"input_ids": ids.contiguous(), "logits": out.logits.float().contiguous()}
    L = model.config.num_hidden_layers
    assert len(out.hidden_states) == L + 1
    for i, h in enumerate(out.hidden_states):
        tensors[f"hidden_states.{i}"] = h.float().contiguous()
    has_bf16 = wdtype == "bfloat16"
    if has_bf16:
        mb = load(model_dir, torch.bfloat16)
        with torch.no_grad():
            lb = mb(input_ids=ids, use_cache=False).logits
        assert lb.dtype == torch.bfloat16
        tensors["logits_bf16"] = lb.float().contiguous()
        diff = (lb.float() - out.logits).abs().max().item()
        print(f"  {name}: max |logits_bf16 - logits| = {diff:.4g}")
    save_file(tensors, os.path.join(OUT, f"{name}.safetensors"), metadata={"format": "pt"})
    cfg = model.config
    return {"name": name, "model_dir": index_dir, "dtype": wdtype, "has_logits_bf16": has_bf16,
            "model_type": cfg.model_type, "num_layers": L, "batch": B, "time": T,
            "vocab_size": V, "hidden_size": cfg.hidden_size}


def greedy(name, prompt):
    model_dir = CASES[name][0]
    model = load(model_dir, torch.float32)
    # No eos stopping: eos_token_id None and min_new_tokens = max_new_tokens.
    gc = GenerationConfig(do_sample=False, max_new_tokens=20, min_new_tokens=20,
                          eos_token_id=None, pad_token_id=0, bos_token_id=None)
    ids = torch.tensor([prompt], dtype=torch.int64)
    with torch.no_grad():
        res = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gc,
                             output_scores=True, return_dict_in_generate=True)
    new = res.sequences[0, len(prompt):].tolist()
    assert len(new) == 20
    # Smallest top-1 minus top-2 logit over the 20 steps: how robust the argmax is.
    gaps = []
    for s in res.scores:
        top = torch.topk(s[0].float(), 2).values
        gaps.append((top[0] - top[1]).item())
    # Cross-check against a plain full forward (no KV cache) argmax loop.
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(20):
            logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits
            seq.append(int(logits[0, -1].argmax()))
    assert seq[len(prompt):] == new, (name, seq, new)
    return {"name": name, "model_dir": CASES[name][1], "prompt_ids": prompt, "new_ids": new,
            "min_top2_logit_gap": min(gaps)}


def stories_nll():
    tok_path = os.path.join(STORIES, "tokenizer.json")
    if not os.path.exists(tok_path):
        print("  stories260K tokenizer.json missing: stories260K_nll.json not written")
        return False
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    model = load(STORIES, torch.float32)
    rows = []
    for text in NLL_TEXTS:
        enc = tok.encode(text, add_special_tokens=False).ids
        ids = [1] + list(enc)  # prepend BOS = 1 ourselves
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
        lp = torch.log_softmax(logits.float().double(), dim=-1)  # fp32 logits, fp64 math
        nll = [-lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)]
        rows.append({"text": text, "ids": ids, "token_nll": nll,
                     "mean_nll": math.fsum(nll) / len(nll)})
        print(f"  nll {rows[-1]['mean_nll']:.4f}  {text[:40]}")
    with open(os.path.join(OUT, "stories260K_nll.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return True


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1:]
    if only == ["nll"]:
        stories_nll()
        return
    index = [forward_case(name) for name in CASES]
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    # Prompt seeds picked (search over 40 seeds) for the largest smallest top-1/top-2 logit gap
    # over the 20 steps, so an fp32 reimplementation (logit error ~1e-5) cannot flip an argmax.
    def prompt(name, seed, n=8):
        g = torch.Generator().manual_seed(seed)
        vocab = MODELS[name][3]["vocab_size"]
        return torch.randint(3, vocab, (n,), generator=g).tolist()
    rows = [greedy("stories260K", [1]),
            greedy("stories260K", [1, 403, 407, 261, 378]),
            greedy("qwen2-gqa7-untied-f32", prompt("qwen2-gqa7-untied-f32", 39)),
            greedy("llama-gqa2-f32", prompt("llama-gqa2-f32", 4))]
    for r in rows:
        print(f"  greedy {r['name']}: {r['new_ids']} gap {r['min_top2_logit_gap']:.3g}")
    with open(os.path.join(OUT, "greedy.json"), "w") as f:
        json.dump(rows, f, indent=1)
    stories_nll()


if __name__ == "__main__":
    main()
