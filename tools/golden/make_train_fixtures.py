"""LoRA training reference fixtures: transformers 4.46.3 Trainer semantics + PEFT 0.13.2.

Writes tests/fixtures/train/<case>/{case.json, tensors.safetensors} (format: the README.md
beside them). The optimizer loop is written out by hand but follows Trainer exactly
(tools/golden/check_train_vs_trainer.py replays each case through the real Trainer and
compares); what was read in transformers 4.46.3 to get there:
  - Trainer.get_batch_samples: num_items_in_batch = sum(batch["labels"].ne(-100).sum()) over
    the gradient_accumulation_steps micro-batches of one optimizer step, on the UNSHIFTED
    labels (so a sequence whose label 0 is not -100 counts one more item than it predicts).
  - model_accepts_loss_kwargs is true for Qwen2/Llama (forward takes **loss_kwargs; for a
    PeftModel the base model's forward is inspected), so compute_loss passes
    num_items_in_batch into ForCausalLMLoss: sum of shifted CE / num_items_in_batch.
  - training_step returns loss.detach() unscaled when num_items_in_batch is given, and the
    Accelerator is created without gradient accumulation, so backward() of that loss is not
    divided by the accumulation steps: the step's gradient = sum over micro-batches.
  - clip via accelerator.clip_grad_norm_ -> torch.nn.utils.clip_grad_norm_(max 1.0), whose
    return value (the pre-clip total norm) is the logged grad_norm.
  - optimizer.step(); lr_scheduler.step(); then the log: learning_rate = lr * factor(k) at
    step k (the value AFTER the scheduler step), loss = tr_loss summed over the step's
    micro-batches / steps since last log, rounded to 4 decimals (we store it unrounded).

Regenerate (from the repository root, after tools/golden/make_models.py):
    /opt/gv/bin/python tools/golden/make_train_fixtures.py
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, get_linear_schedule_with_warmup

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "train")
STORIES = os.path.join(ROOT, "tests", "data", "stories260K")
# gradcheck_B_std: std of the random non-zero B of the gradient check (B = 0 makes dA zero),
# chosen per case so the adapter moves the loss visibly (~0.1-0.5 nats) without wrecking it.
ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

CASES = {
    "qwen2-gqa7-untied-f32": dict(
        model_dir="models/qwen2-gqa7-untied-f32", r=4, alpha=8, targets=ALL7, rslora=False,
        weight_decay=0.0, seed=11, data="random", dropout_stats=True, gradcheck_B_std=0.2),
    "llama-gqa2-f32": dict(
        model_dir="models/llama-gqa2-f32", r=3, alpha=6, targets=["q_proj", "v_proj"],
        rslora=True, weight_decay=0.0, seed=12, data="random", dropout_stats=False,
        gradcheck_B_std=0.2),
    "stories260K": dict(
        model_dir="data:stories260K", r=8, alpha=16, targets=ALL7, rslora=False,
        weight_decay=0.01, seed=13, data="stories", dropout_stats=False, gradcheck_B_std=0.03),
}
OPTIM = dict(lr=1e-3, betas=[0.9, 0.999], eps=1e-8, max_grad_norm=1.0, scheduler="linear",
             warmup_steps=3, num_steps=20, grad_accum=4)
MICRO_BATCH = 2
PAD_ID = 0
DROPOUT_P, DROPOUT_SEEDS = 0.1, 400
RANDOM_POOL = 6  # distinct random sequences the random-model cases draw from

STORY_SENTENCES = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "Tom had a red ball. He liked to throw it to his dog, Max.",
    "One day, a big bird flew over the tree and sang a happy song.",
    "The sun was hot, so Mia and her mom went to the park to eat ice cream.",
    "Ben was sad because he lost his toy. His friend helped him find it under the bed.",
    "The cat saw a small mouse in the garden and ran after it.",
    "Sue wanted to bake a cake for her dad. She put in sugar and eggs.",
    "The little boat went on the big blue sea. The fish said hello.",
    "Tim and Sam built a tall tower with blocks. Then it fell down and they laughed.",
    "Anna found a shiny stone by the river. She kept it in her pocket.",
    "The old man gave the kids some apples. They said thank you and smiled.",
    "It was a rainy day, so Lucy stayed inside and read a book with her cat.",
]


def model_path(rel):
    return STORIES if rel == "data:stories260K" else os.path.join(FIX, rel)


def make_sequences(case, vocab, n, gen):
    """n token lists and their prompt lengths (label -100 on the first `prompt` tokens)."""
    seqs = []
    if case["data"] == "stories":
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(STORIES, "tokenizer.json"))
        pool = [[1] + tok.encode(s, add_special_tokens=False).ids for s in STORY_SENTENCES]
    else:
        pool = [torch.randint(3, vocab, (16,), generator=gen).tolist() for _ in range(RANDOM_POOL)]
    for _ in range(n):
        if case["data"] == "stories":
            base = pool[int(torch.randint(0, len(pool), (1,), generator=gen))]
            length = int(torch.randint(6, len(base) + 1, (1,), generator=gen))
            ids = base[:length]
        else:
            # A small pool of random sequences, so the adapter can learn and the loss falls.
            base = pool[int(torch.randint(0, len(pool), (1,), generator=gen))]
            length = int(torch.randint(5, len(base) + 1, (1,), generator=gen))
            ids = base[:length]
        # Prompt length 0 (about 1 in 6) leaves label 0 unmasked: Trainer counts it in
        # num_items_in_batch although it is never predicted; the fixture pins that.
        prompt = int(torch.randint(1, 5, (1,), generator=gen))
        if int(torch.randint(0, 6, (1,), generator=gen)) == 0:
            prompt = 0
        prompt = min(prompt, length - 2)
        seqs.append((ids, prompt))
    return seqs


def collate(seqs):
    T = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), T), PAD_ID, dtype=torch.int64)
    mask = torch.zeros((len(seqs), T), dtype=torch.int64)
    labels = torch.full((len(seqs), T), -100, dtype=torch.int64)
    for b, (s, prompt) in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
        labels[b, prompt:len(s)] = torch.tensor(s[prompt:])
    return ids, mask, labels


def make_micro_batches(case, vocab):
    gen = torch.Generator().manual_seed(case["seed"] * 1000 + 7)
    n_micro = OPTIM["num_steps"] * OPTIM["grad_accum"]
    seqs = make_sequences(case, vocab, n_micro * MICRO_BATCH, gen)
    batches = [collate(seqs[k * MICRO_BATCH:(k + 1) * MICRO_BATCH]) for k in range(n_micro)]
    ids0, mask0, labels0 = batches[0]
    assert (mask0 == 0).any(), "micro-batch 0 should contain padding"
    return batches


def token_ce_sum(logits, labels):
    """Sum of next-token CE over labels != -100 (ForCausalLMLoss with reduction sum)."""
    V = logits.shape[-1]
    shift_logits = logits.float()[:, :-1, :].reshape(-1, V)
    shift_labels = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")


def n_predicted(labels):
    return int((labels[:, 1:] != -100).sum())


def build_peft(case, dropout):
    base = AutoModelForCausalLM.from_pretrained(model_path(case["model_dir"]),
                                                torch_dtype=torch.float32,
                                                attn_implementation="eager")
    cfg = LoraConfig(task_type="CAUSAL_LM", r=case["r"], lora_alpha=case["alpha"],
                     lora_dropout=dropout, target_modules=list(case["targets"]),
                     use_rslora=case["rslora"], bias="none")
    torch.manual_seed(case["seed"])  # PEFT's kaiming-uniform A draws from the global RNG
    return get_peft_model(base, cfg)


def lora_params(model):
    """{PEFT saved key: parameter}, keys as in adapter_model.safetensors (no '.default')."""
    out = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert "lora_" in name, name
            out[name.replace(".default", "")] = p
    return out  # model order, as Trainer hands them to clip_grad_norm_ and AdamW


def set_params(params, values):
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(values[k])


def forward_logits(model, ids, mask):
    return model(input_ids=ids, attention_mask=mask, use_cache=False).logits


def gradcheck(model, params, init, batches, seed, b_std):
    """Random non-zero B, A = init; grads of mean token CE of micro-batch 0 alone."""
    gen = torch.Generator().manual_seed(seed * 31 + 5)
    gb = {k: (b_std * torch.randn(p.shape, generator=gen) if ".lora_B." in k
              else init[k].clone()) for k, p in params.items()}
    set_params(params, gb)
    model.train()
    model.zero_grad(set_to_none=True)
    ids, mask, labels = batches[0]
    out = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False)
    # Cross-check the model's own mean loss against our sum / count.
    ours = token_ce_sum(out.logits, labels) / n_predicted(labels)
    assert torch.allclose(out.loss, ours, rtol=1e-6, atol=0), (out.loss, ours)
    out.loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in params.items()}
    model.zero_grad(set_to_none=True)
    set_params(params, init)
    return {k: v for k, v in gb.items() if ".lora_B." in k}, grads, out.loss.item()


def dropout_stats(case, init, gradcheck_B, batch):
    model = build_peft(case, DROPOUT_P)
    params = lora_params(model)
    set_params(params, {**init, **gradcheck_B})
    ids, mask, labels = batch
    with torch.no_grad():
        model.eval()
        loss0 = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss
        model.train()
        losses = []
        for s in range(DROPOUT_SEEDS):
            torch.manual_seed(s)
            losses.append(model(input_ids=ids, attention_mask=mask, labels=labels,
                                use_cache=False).loss.item())
    t = torch.tensor(losses, dtype=torch.float64)
    return {"p": DROPOUT_P, "seeds": DROPOUT_SEEDS, "micro_batch": 0,
            "mean": t.mean().item(), "std": t.std(unbiased=True).item(),
            "min": t.min().item(), "max": t.max().item(),
            "loss_without_dropout": loss0.item(),
            "note": "train mode, lora_dropout 0.1, A = init, B = gradcheck_B; loss = mean "
                    "token CE of micro-batch 0; torch.manual_seed(s) before each forward, "
                    "s = 0..seeds-1; std is the sample standard deviation (n-1)"}


def train(model, params, batches, weight_decay):
    """Trainer-equivalent loop. Returns per-step logs, per-micro-batch losses, grad1."""
    opt = torch.optim.AdamW(list(params.values()), lr=OPTIM["lr"], betas=tuple(OPTIM["betas"]),
                            eps=OPTIM["eps"], weight_decay=weight_decay)
    sched = get_linear_schedule_with_warmup(opt, OPTIM["warmup_steps"], OPTIM["num_steps"])
    GA = OPTIM["grad_accum"]
    steps, micro_losses, micro_info, grad1 = [], [], [], None
    model.train()
    for step in range(OPTIM["num_steps"]):
        window = batches[step * GA:(step + 1) * GA]
        n_items = int(sum(int(labels.ne(-100).sum()) for _, _, labels in window))
        lr_applied = opt.param_groups[0]["lr"]
        step_loss = 0.0
        model.zero_grad(set_to_none=True)
        for ids, mask, labels in window:
            logits = forward_logits(model, ids, mask)
            ce_sum = token_ce_sum(logits, labels)
            loss = ce_sum / n_items
            loss.backward()
            step_loss += loss.item()
            npred = n_predicted(labels)
            micro_losses.append(ce_sum.item() / npred)
            micro_info.append({"n_label_tokens": int(labels.ne(-100).sum()),
                               "n_predicted": npred})
        if step == 0:
            grad1 = {k: p.grad.detach().clone() for k, p in params.items()}
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), OPTIM["max_grad_norm"])
        opt.step()
        sched.step()
        steps.append({"step": step + 1, "loss": step_loss, "grad_norm": norm.item(),
                      "learning_rate": sched.get_last_lr()[0], "lr_applied": lr_applied,
                      "num_items_in_batch": n_items})
    model.zero_grad(set_to_none=True)
    return steps, micro_losses, micro_info, grad1


def run_case(name):
    case = CASES[name]
    model = build_peft(case, 0.0)
    params = lora_params(model)
    init = {k: p.detach().clone() for k, p in params.items()}
    vocab = model.config.vocab_size
    batches = make_micro_batches(case, vocab)
    gradcheck_B, gc_grads, gc_loss = gradcheck(model, params, init, batches, case["seed"],
                                                case["gradcheck_B_std"])
    steps, micro_losses, micro_info, grad1 = train(model, params, batches,
                                                   case["weight_decay"])
    final = {k: p.detach().clone() for k, p in params.items()}

    tensors = {}
    for k, (ids, mask, labels) in enumerate(batches):
        tensors[f"ids.{k}"] = ids
        tensors[f"labels.{k}"] = labels
        tensors[f"attention_mask.{k}"] = mask
    for prefix, d in (("init", init), ("gradcheck_B", gradcheck_B),
                      ("gradcheck_grad", gc_grads), ("grad1", grad1), ("final", final)):
        for k, v in d.items():
            tensors[f"{prefix}.{k}"] = v.float().contiguous()
    os.makedirs(os.path.join(OUT, name), exist_ok=True)
    save_file(tensors, os.path.join(OUT, name, "tensors.safetensors"), metadata={"format": "pt"})

    scale = case["alpha"] / (math.sqrt(case["r"]) if case["rslora"] else case["r"])
    doc = {
        "name": name, "model_dir": case["model_dir"],
        "lora": {"r": case["r"], "alpha": case["alpha"], "dropout": 0.0,
                 "target_modules": case["targets"], "use_rslora": case["rslora"],
                 "scaling": scale, "init_seed": case["seed"]},
        "optim": {**OPTIM, "weight_decay": case["weight_decay"], "optimizer": "torch.optim.AdamW"},
        "data": {"micro_batch_size": MICRO_BATCH, "num_micro_batches": len(batches),
                 "pad_id": PAD_ID, "padding": "right", "source": case["data"]},
        "lora_keys": list(init),
        "micro_batch_loss": micro_losses, "micro_batch_tokens": micro_info,
        "steps": steps,
        "gradcheck_loss": gc_loss, "gradcheck_B_std": case["gradcheck_B_std"],
    }
    if case["dropout_stats"]:
        doc["dropout"] = dropout_stats(case, init, gradcheck_B, batches[0])
    with open(os.path.join(OUT, name, "case.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(f"{name}: loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f}, "
          f"grad_norm[0] {steps[0]['grad_norm']:.4g}, gradcheck {gc_loss:.4f}")


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    names = sys.argv[1:] or list(CASES)
    for name in names:
        run_case(name)


if __name__ == "__main__":
    main()
