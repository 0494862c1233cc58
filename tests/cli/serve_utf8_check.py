"""Streamed deltas are whole UTF-8 characters (tests/cli/serve_utf8.sh). Usage: serve_utf8_check.py URL"""
import json
import sys
import urllib.request

URL = sys.argv[1].rstrip("/")


def post(body):
    req = urllib.request.Request(URL + "/v1/completions", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    return urllib.request.urlopen(req, timeout=120)


split_tokens = 0
for seed in range(4):
    body = {"model": "qwen", "prompt": "从前有座山，山里有座庙。", "max_tokens": 50, "temperature": 1.0, "seed": seed,
            "ignore_eos": True}
    with post(dict(body, logprobs=0)) as r:
        full = json.loads(r.read())["choices"][0]
    text = full["text"]
    # A token that is part of a character decodes, alone, to U+FFFD (the case being tested).
    split_tokens += sum(1 for t in full["logprobs"]["tokens"] if "\ufffd" in t)
    deltas = []
    with post(dict(body, stream=True)) as r:
        for line in r:
            line = line.decode("utf-8")  # raises on a split character in the raw stream
            if not line.startswith("data: ") or line.strip() == "data: [DONE]":
                continue
            c = json.loads(line[6:])
            if c["choices"]:
                deltas.append(c["choices"][0]["text"])
    joined = "".join(deltas)
    assert joined == text, (seed, joined, text)  # same seed, same tokens
    # A character split between two deltas would reach the client as U+FFFD in each (the
    # server replaces invalid UTF-8 when it writes JSON): there are exactly as many as in the
    # whole answer (where the model itself produced an invalid sequence), usually none.
    assert sum(d.count("\ufffd") for d in deltas) == text.count("\ufffd"), (seed, deltas, text)
    assert any(ord(ch) > 0x2E80 for ch in text), (seed, text)  # CJK characters were produced
assert split_tokens > 0, "no token held part of a character: the test did not exercise the hold-back"
print(f"serve_utf8_check: ok ({split_tokens} tokens held part of a character)")
