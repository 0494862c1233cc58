#!/usr/bin/env python3
"""HF `tokenizers` encode throughput on the texts bench_tokenizer_encode uses.

Run (same machine, same session as the C++ bench):
    /opt/gv/bin/python bench/tokenizer_baseline.py
Single-thread numbers use encode_batch with RAYON_NUM_THREADS=1 (set before the import:
HF's batch encode is parallel by default); "batch" uses all cores. MB/s = input UTF-8 MB
(2^20 bytes) per second, best of several passes (the word cache is warm after the first,
as in the C++ bench). Single-thread: process CPU time; batch: wall time.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")


def chinese():
    out = []
    with open(os.path.join(DATA, "disc-law", "disc_law_eval_sft.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            for k in ("input", "output"):
                if isinstance(r.get(k), str):
                    out.append(r[k])
    return out


def english():
    g = json.load(open(os.path.join(DATA, "tokenizer-golden", "qwen_golden_ids.json"), encoding="utf-8"))
    base = [c["text"] for c in g["cases"] if c["category"] in ("en", "code")]
    t = json.load(open(os.path.join(DATA, "tokenizer-golden", "hf_transformers_qwen2_cases.json"), encoding="utf-8"))
    base += [c["text"] for c in t["cases"]]
    return base * 200


def measure(tok, texts, passes=5, clock=time.process_time):
    """MB/s by `clock`: process CPU time for single-thread runs (what Google Benchmark reports
    by default for ours, and robust on a shared VM), wall time for the multi-core batch."""
    nbytes = sum(len(s.encode("utf-8")) for s in texts)
    best = float("inf")
    for _ in range(passes):
        t0 = clock()
        tok.encode_batch(texts, add_special_tokens=False)
        best = min(best, clock() - t0)
    return nbytes / best / 2**20


def child(mode):
    from tokenizers import Tokenizer
    qwen = Tokenizer.from_file(os.path.join(DATA, "qwen-tokenizer", "qwen2.5", "tokenizer.json"))
    stories = Tokenizer.from_file(os.path.join(DATA, "stories260K", "tokenizer.json"))
    if mode == "single":
        print(f"hf single-thread qwen2.5 chinese  {measure(qwen, chinese()):8.2f} MB/s")
        print(f"hf single-thread qwen2.5 english  {measure(qwen, english()):8.2f} MB/s")
        print(f"hf single-thread stories english  {measure(stories, english()):8.2f} MB/s")
        t0 = time.process_time()
        qwen.encode("a" * (1 << 20), add_special_tokens=False)
        print(f"hf qwen2.5 1 MB run of 'a'        {time.process_time() - t0:8.3f} s CPU")
    else:
        mbs = measure(qwen, chinese(), clock=time.perf_counter)
        print(f"hf batch ({os.cpu_count()} cores) qwen2.5 chinese {mbs:8.2f} MB/s wall")


def main():
    if len(sys.argv) > 1:
        return child(sys.argv[1])
    import tokenizers
    print(f"tokenizers {tokenizers.__version__}")
    env1 = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    subprocess.run([sys.executable, __file__, "single"], env=env1, check=True)
    envn = dict(os.environ, TOKENIZERS_PARALLELISM="true")
    envn.pop("RAYON_NUM_THREADS", None)
    subprocess.run([sys.executable, __file__, "batch"], env=envn, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
