"""Golden fixtures for the sampler: transformers' own logits processors on random logits.

Regenerate (developer machine, CPU only; CI never runs this):
    /opt/gv/bin/python tools/golden/make_sampler_fixtures.py
writes tests/fixtures/sampler/processors.json (~0.3 MB), read by
tests/unit/test_generate_sampler.cpp.

Each case is a set of generation settings. The processor chain is built by transformers
itself (GenerationMixin._get_logits_processor, 4.46.3), so the order and the conditions under
which each processor is added are the reference's, not ours. For every row of logits the
fixture holds the chain's output (float32 little-endian, base64; -inf stays -inf), its argmax
(greedy choice, torch.argmax) and, for some cases, softmax(output) (what torch.multinomial
draws from).

Ambiguity recorded, not hidden: TopPLogitsWarper sorts with torch.sort(stable=False), whose
order among equal logits is unspecified, so when a group of tied logits straddles the top-p
cut, which members survive is not defined by the reference. Such indices are listed per row
in "top_p_tie_ambiguous"; the C++ test checks only how many of each group survive there.
(On short rows torch's sort is stable — equal logits in id order, lower ids removed first —
and "small_cases" pins that, along with the exact-equality boundaries of `<=` / `<`, on rows
whose probabilities are exact in float32.)
Float near-misses are excluded instead: the script asserts that no cumulative probability
(top-p) or probability (min-p) lies within a relative 1e-4 of its threshold, so our double
precision softmax makes the same keep/remove decisions as torch's float32 one.
"""
import base64
import json
import pathlib

import numpy as np
import torch
from transformers import GenerationConfig
from transformers.generation.logits_process import (LogitsProcessorList, MinPLogitsWarper,
                                                    TopKLogitsWarper, TopPLogitsWarper)
from transformers.generation.utils import GenerationMixin

V = 1000
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "sampler" / "processors.json"


def b64(a):
    return base64.b64encode(np.asarray(a, dtype="<f4").tobytes()).decode()


def make_rows():
    g = np.random.default_rng(20241125)
    rows = []
    # Row 0: spread logits, a tie at the top-20 boundary, a tie near the top, a few large values.
    x = (g.standard_normal(V) * 1.5).astype(np.float32)
    x[42], x[7], x[999] = 6.0, 5.5, 5.5
    x[5] = x[17] = x[300] = np.float32(3.25)
    x[[60, 61, 62, 63]] = np.float32(-4.0)
    order = np.argsort(-x, kind="stable")
    x[order[20]] = x[order[19]]  # 20th and 21st largest equal: top_k=20 keeps both
    ctx = [42, 7, 5, 5, 300, 11, 12, 13, 42, 998] + list(g.integers(0, V, 20))
    ctx += [int(i) for i in np.flatnonzero(x < -3)[:5]] + [60, 60, 61]  # negative logits: multiplied
    rows.append((x, ctx))
    # Row 1: coarse values (steps of 0.5) so many logits tie; two equal maxima.
    x = (np.round(g.standard_normal(V) * 2.0 * 2) / 2).astype(np.float32)
    x[100] = x[600] = np.float32(7.5)
    ctx = [600, 3, 3, 3, 999, 0] + list(g.integers(0, V, 25))
    rows.append((x, ctx))
    # Row 2: peaked, with some -inf entries (as after a bad-words filter).
    x = (g.standard_normal(V) * 1.5).astype(np.float32)
    x[500], x[501], x[502], x[77] = 20.0, 15.0, 15.0, 14.0
    x[[1, 2, 3, 900, 901]] = -np.inf
    ctx = [500, 1, 2, 2, 77, 500] + list(g.integers(0, V, 10))
    rows.append((x, ctx))
    return rows


# name, GenerationConfig kwargs, whether to store softmax(output) for the distribution test
CASES = [
    ("greedy", dict(do_sample=False), False),
    ("rep_1.05", dict(do_sample=False, repetition_penalty=1.05), False),
    ("rep_1.3", dict(do_sample=False, repetition_penalty=1.3), False),
    ("temp_0.7", dict(do_sample=True, temperature=0.7, top_k=0), False),
    ("temp_1.5", dict(do_sample=True, temperature=1.5, top_k=0), False),
    ("top_k_1", dict(do_sample=True, top_k=1), False),
    ("top_k_20", dict(do_sample=True, top_k=20), False),
    ("top_k_50_hf_default", dict(do_sample=True), True),
    ("top_p_0.8", dict(do_sample=True, top_k=0, top_p=0.8), False),
    ("top_p_0.95", dict(do_sample=True, top_k=0, top_p=0.95), False),
    ("top_p_0.3", dict(do_sample=True, top_k=0, top_p=0.3), False),
    ("min_p_0.05", dict(do_sample=True, top_k=0, min_p=0.05), False),
    ("min_p_0.2", dict(do_sample=True, top_k=0, min_p=0.2), False),
    ("qwen25_instruct", dict(do_sample=True, repetition_penalty=1.05, temperature=0.7, top_k=20,
                             top_p=0.8), True),
    ("all_five", dict(do_sample=True, repetition_penalty=1.3, temperature=0.7, top_k=20, top_p=0.8,
                      min_p=0.05), True),
    ("temp_top_p_min_p", dict(do_sample=True, temperature=0.7, top_k=0, top_p=0.9, min_p=0.1), False),
    ("rep_temp_top_k", dict(do_sample=True, repetition_penalty=1.3, temperature=1.5, top_k=50), False),
]


class _Gen(GenerationMixin):  # _get_logits_processor needs no model state for these settings
    pass


def build_chain(kw):
    gc = GenerationConfig(**kw)
    gc._eos_token_tensor = None  # set by generate() before it builds the chain
    return _Gen()._get_logits_processor(
        generation_config=gc, input_ids_seq_length=1, encoder_input_ids=None,
        prefix_allowed_tokens_fn=None, logits_processor=LogitsProcessorList(), device="cpu")


def check_exactness(x, ctx):
    """Temperature and repetition penalty are single float32 roundings of x/t, x*p, x/p."""
    xt = torch.from_numpy(x)[None]
    for t in (0.7, 1.5):
        assert np.array_equal((xt / t)[0].numpy(), x / np.float32(t), equal_nan=True)
    p = np.float32(1.3)
    u = np.unique(ctx)
    want = x.copy()
    want[u] = np.where(x[u] < 0, x[u] * p, x[u] / p)
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor
    got = RepetitionPenaltyLogitsProcessor(1.3)(torch.tensor([ctx]), xt.clone())[0].numpy()
    assert np.array_equal(got, want, equal_nan=True)


def top_p_analysis(scores, top_p, out):
    """Indices of tie groups straddling the top-p cut; asserts no float near-miss elsewhere."""
    s = scores.numpy().astype(np.float64)
    fin = np.isfinite(s)
    e = np.where(fin, np.exp(s - s[fin].max()), 0.0)
    p = e / e.sum()
    order = np.lexsort((-np.arange(V), s))  # ascending value; any tie order works for sums
    cum = np.cumsum(p[order])
    thr = 1.0 - top_p
    near = np.abs(cum - thr) < 1e-4 * max(thr, 1e-30)
    removed_by_top_p = np.isinf(out) & fin
    kept = np.isfinite(out)
    ambiguous = []
    for v in np.unique(s[fin]):
        group = np.flatnonzero(s == v)
        if removed_by_top_p[group].any() and kept[group].any():
            ambiguous += group.tolist()
    for k, i in enumerate(order):
        if near[k] and i not in ambiguous:
            raise SystemExit(f"top_p {top_p}: cumulative prob {cum[k]} too close to {thr}")
    return sorted(ambiguous)


def min_p_check(scores, min_p):
    s = scores.numpy().astype(np.float64)
    fin = np.isfinite(s)
    p = np.where(fin, np.exp(s - s[fin].max()), 0.0)
    thr = min_p  # p_i / p_max compared with min_p
    r = p[fin]
    if np.any(np.abs(r - thr) < 1e-4 * thr):
        raise SystemExit(f"min_p {min_p}: a probability ratio lies too close to the threshold")


# Hand-made rows whose probabilities are exact in float32, so the boundary comparisons
# (`<=` in top-p, `<` in min-p and top-k) are decided by equality, not by rounding.
SMALL = [
    ("top_p_exact_cut", [1.0, 1.0, 1.0, 1.0], TopPLogitsWarper, 0.5),  # cum 0.25, 0.5 <= 0.5
    ("top_p_exact_cut_mixed", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -np.inf], TopPLogitsWarper,
     0.75),
    ("min_p_equal_to_top", [3.0, 3.0, 1.0], MinPLogitsWarper, 1.0),  # prob == min_p * top: kept
    ("top_k_all_tied", [2.0, 2.0, 2.0, 2.0], TopKLogitsWarper, 1),
    ("top_k_beyond_live", [5.0, -np.inf, 4.0, -np.inf], TopKLogitsWarper, 3),
]


def main():
    rows = make_rows()
    for x, ctx in rows:
        check_exactness(x, ctx)
    out = {"vocab": V, "transformers": "4.46.3", "torch": torch.__version__,
           "rows": [{"logits": b64(x), "context_ids": [int(c) for c in ctx]} for x, ctx in rows],
           "cases": []}
    for name, kw, with_probs in CASES:
        chain = build_chain(kw)
        full = dict(GenerationConfig(**kw).to_dict())
        case = {"name": name,
                "params": {k: full[k] for k in ("do_sample", "temperature", "top_k", "top_p", "min_p",
                                                "repetition_penalty")},
                "processors": [type(p).__name__ for p in chain],
                "outputs": [], "argmax": [], "top_p_tie_ambiguous": []}
        if with_probs:
            case["probs"] = []
        for x, ctx in rows:
            ids = torch.tensor([ctx], dtype=torch.long)
            scores = torch.from_numpy(x.copy())[None]
            amb = []
            for proc in chain:
                before = scores
                scores = proc(ids, scores)
                if isinstance(proc, TopPLogitsWarper):
                    amb = top_p_analysis(before[0], proc.top_p, scores[0].numpy())
                if type(proc).__name__ == "MinPLogitsWarper":
                    min_p_check(before[0], proc.min_p)
            res = scores[0].numpy()
            case["outputs"].append(b64(res))
            case["argmax"].append(int(torch.argmax(scores[0])))
            case["top_p_tie_ambiguous"].append(amb)
            if with_probs:
                case["probs"].append(b64(torch.softmax(scores[0], dim=-1).numpy()))
        out["cases"].append(case)
        print(name, case["processors"], "kept", [int(np.isfinite(np.frombuffer(
            base64.b64decode(o), "<f4")).sum()) for o in case["outputs"]],
            "ambiguous", [len(a) for a in case["top_p_tie_ambiguous"]])
    out["small_cases"] = []
    for name, logits, cls, arg in SMALL:
        x = torch.tensor([logits], dtype=torch.float32)
        y = cls(arg)(torch.zeros((1, 1), dtype=torch.long), x)[0].numpy()
        out["small_cases"].append({"name": name, "processor": cls.__name__, "arg": arg,
                                   "logits": b64(x[0].numpy()), "output": b64(y)})
        print(name, y)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print("wrote", OUT, OUT.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
