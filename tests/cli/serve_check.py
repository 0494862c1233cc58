"""Checks of `lorafit serve` through its HTTP API with the Python standard library only
(tests/cli/serve.sh starts the server and writes the reference answers into TMP).
Usage: serve_check.py URL API_KEY TMP"""
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

URL, KEY, TMP = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
MSGS = [{"role": "user", "content": "Once upon a time"}]


def call(path, body=None, key=KEY, raw=None):
    """(status, parsed JSON or text) of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(URL + path, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text, headers = r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        status, text, headers = e.code, e.read().decode(), e.headers
    try:
        return status, json.loads(text), headers
    except ValueError:
        return status, text, headers


def stream(path, body, logprobs=None):
    """(text, finish_reason, usage or None, chunk count) of a streamed request; each chunk's
    logprobs are appended to `logprobs` when given."""
    body = dict(body, stream=True)
    req = urllib.request.Request(URL + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", "Bearer " + KEY)
    text, finish, usage, n, done = "", None, None, 0, False
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream"), r.headers["Content-Type"]
        for line in r:
            line = line.decode("utf-8")  # every chunk is whole UTF-8 (a split character raises here)
            if not line.strip():
                continue
            assert line.startswith("data: "), line
            payload = line[len("data: "):].strip()
            if payload == "[DONE]":
                done = True
                continue
            c = json.loads(payload)
            assert "error" not in c, c
            if not c["choices"]:
                usage = c["usage"]
                continue
            ch = c["choices"][0]
            text += ch["delta"].get("content", "") if "delta" in ch else ch["text"]
            finish = ch["finish_reason"] or finish
            if logprobs is not None and ch["logprobs"] is not None:
                logprobs.append(ch["logprobs"])
            n += 1
    assert done, "no data: [DONE]"
    return text, finish, usage, n


def expect_error(status, body, code, param=None, what=""):
    assert status == code, f"{what}: status {status} (want {code}): {body}"
    assert isinstance(body, dict) and set(body["error"]) == {"message", "type", "param", "code"}, f"{what}: {body}"
    if param is not None:
        assert body["error"]["param"] == param, f"{what}: param {body['error']['param']} (want {param}): {body}"
        assert param.split(".")[0].split("[")[0] in body["error"]["message"], f"{what}: message names no field: {body}"


def chat(model, **kw):
    return call("/v1/chat/completions", dict({"model": model, "messages": MSGS, "temperature": 0, "max_tokens": 24}, **kw))


# 1. models: the base and both adapters, adapters with parent.
s, m, _ = call("/v1/models")
assert s == 200, m
ids = {d["id"]: d for d in m["data"]}
assert list(ids) == ["stories", "a1", "a2", "a4"], m
assert ids["a1"]["parent"] == "stories" and ids["stories"]["parent"] is None, m

# 2. greedy chat for each model == `lorafit generate` for the same messages; adapters differ from base.
answers = {}
for name in ["stories", "a1", "a2", "a4"]:
    ref = json.load(open(f"{TMP}/gen_{'base' if name == 'stories' else name}.json"))
    s, r, _ = chat(name)
    assert s == 200, r
    got = r["choices"][0]["message"]["content"]
    assert got == ref["text"], f"{name}: served {got!r} != generate {ref['text']!r}"
    assert r["usage"]["completion_tokens"] == len(ref["output_ids"]), r
    assert r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"], r
    want_finish = "stop" if ref["output_ids"][-1] == 2 else "length"
    assert r["choices"][0]["finish_reason"] == want_finish, r
    answers[name] = got
assert answers["a1"] != answers["stories"] and answers["a2"] != answers["a1"], answers
assert answers["a4"] != answers["a1"], answers  # a1's weights through a4's own chat template

# 3. streamed == non-streamed, include_usage gives the same usage.
s, r, _ = chat("a1")
text, finish, usage, n = stream("/v1/chat/completions",
                                {"model": "a1", "messages": MSGS, "temperature": 0, "max_tokens": 24,
                                 "stream_options": {"include_usage": True}})
assert text == r["choices"][0]["message"]["content"], (text, r)
assert finish == r["choices"][0]["finish_reason"] and usage == r["usage"], (finish, usage, r)
assert n >= 3, f"only {n} chunks"

# 4. completions: usage.prompt_tokens == BOS + the tokenizer's ids of the text.
tok = json.load(open(f"{TMP}/tok.json"))
s, r, _ = call("/v1/completions", {"model": "stories", "prompt": "Once upon a time", "temperature": 0, "max_tokens": 11})
assert s == 200, r
assert r["usage"]["prompt_tokens"] == 1 + len(tok), (r, tok)
assert r["choices"][0]["text"] == ", there was a little girl named Lily.", r
assert r["choices"][0]["finish_reason"] == "length", r
ids_prompt = [1] + tok
s, r2, _ = call("/v1/completions", {"model": "stories", "prompt": ids_prompt, "temperature": 0, "max_tokens": 11})
assert r2["choices"][0]["text"] == r["choices"][0]["text"], r2

# 5. stop strings and ids: cut before the stop, finish_reason stop, stop_reason names it.
s, r, _ = call("/v1/completions", {"model": "stories", "prompt": "Once upon a time", "temperature": 0,
                                   "max_tokens": 20, "stop": ["little", "zzz"]})
c = r["choices"][0]
assert (c["text"], c["finish_reason"], c["stop_reason"]) == (", there was a ", "stop", "little"), r
text, finish, _, _ = stream("/v1/completions", {"model": "stories", "prompt": "Once upon a time", "temperature": 0,
                                                "max_tokens": 20, "stop": "little"})
assert (text, finish) == (", there was a ", "stop"), (text, finish)
gen = json.load(open(f"{TMP}/gen_base.json"))
stop_id = gen["output_ids"][3]
s, r, _ = chat("stories", stop_token_ids=[stop_id])
c = r["choices"][0]
assert c["finish_reason"] == "stop" and c["stop_reason"] == stop_id, r
assert r["usage"]["completion_tokens"] == 4, r

# 6. errors: shape, status and the field named.
expect_error(*call("/v1/chat/completions", raw=b'{"model": "stories", "messages": [')[:2], 400, what="malformed")
expect_error(*chat("nope")[:2], 404, "model", "unknown model")
expect_error(*call("/v1/models", key=None)[:2], 401, what="no key")
expect_error(*call("/v1/models", key="wrong")[:2], 401, what="wrong key")
expect_error(*chat("stories", temperature=-1)[:2], 400, "temperature", "negative temperature")
expect_error(*chat("stories", max_tokens=10**9)[:2], 400, "max_tokens", "huge max_tokens")
expect_error(*chat("stories", n=2)[:2], 400, "n", "n=2")
expect_error(*chat("stories", frobnicate=1)[:2], 400, "frobnicate", "unknown field")
expect_error(*chat("stories", stop=["x"] * 10000)[:2], 400, "stop", "10,000 stop strings")
expect_error(*chat("stories", top_p=1.5)[:2], 400, "top_p", "top_p > 1")
expect_error(*chat("stories", messages=[{"role": "wizard", "content": "x"}])[:2], 400, "messages[0].role", "role")
expect_error(*call("/v1/completions", {"model": "stories", "prompt": [5] * 600})[:2], 400, "prompt", "long prompt")
expect_error(*call("/v1/completions", {"model": "stories", "prompt": [99999]})[:2], 400, "prompt", "id out of vocab")
expect_error(*call("/v1/completions", raw=b'{"model": "stories", "prompt": "\xff\xfe"}')[:2], 400, what="invalid UTF-8")
expect_error(*call("/v1/completions", raw=b"[" * 60000)[:2], 400, what="deep nesting")
expect_error(*call("/v1/unload_lora_adapter", {"lora_name": "nope"})[:2], 404, "lora_name", "unload unknown")

# 7. runtime adapter loading (--enable-lora-loading): load a3 = a2's folder, serve it, unload it.
s, r, _ = call("/v1/load_lora_adapter", {"lora_name": "a3", "lora_path": f"{TMP}/a2"})
assert s == 200, r
s, r, _ = chat("a3")
assert s == 200 and r["choices"][0]["message"]["content"] == answers["a2"], r
s, r, _ = call("/v1/unload_lora_adapter", {"lora_name": "a3"})
assert s == 200, r
expect_error(*chat("a3")[:2], 404, "model", "unloaded adapter")

# 8. 32 concurrent streaming clients over base + 2 adapters (hostile requests in between): each
#    answer equals its sequential greedy answer.
errors = []


def client(i):
    name = ["stories", "a1", "a2"][i % 3]
    try:
        if i % 8 == 7:  # a hostile request among the others
            s, b, _ = chat(name, temperature=-5)
            assert s == 400, b
            return
        text, finish, _, _ = stream("/v1/chat/completions",
                                    {"model": name, "messages": MSGS, "temperature": 0, "max_tokens": 24})
        assert text == answers[name], f"client {i} ({name}): {text!r} != {answers[name]!r}"
    except Exception as e:  # noqa: BLE001 (collected and reported below)
        errors.append(f"client {i}: {e}")


threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors

# 10. logprobs. Completions (legacy shape) against transformers' log_softmax of the raw logits
#     (tests/fixtures/serve/logprobs.json, tools/golden/make_serve_fixtures.py), greedy. Bound:
#     both run the fp32 forward of the same weights; the logits differ by summation order only
#     (≲ 1e-6 relative over K ≤ 1024 terms, |logit| < 30), so a logprob (a logit minus the
#     log-sum-exp) is within 1e-4.
FIX = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "serve",
                                  "logprobs.json")))
for case in FIX:
    name = "stories" if case["model"] == "base" else case["model"]
    s, r, _ = call("/v1/completions", {"model": name, "prompt": case["prompt_ids"], "temperature": 0,
                                       "max_tokens": len(case["steps"]), "logprobs": 5})
    assert s == 200, r
    lp = r["choices"][0]["logprobs"]
    assert set(lp) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"}, lp
    assert len(lp["tokens"]) == len(case["steps"]) == r["usage"]["completion_tokens"], (lp, r["usage"])
    for i, step in enumerate(case["steps"]):
        assert abs(lp["token_logprobs"][i] - step["logprob"]) < 1e-4, (name, i, lp["token_logprobs"][i], step)
        got = sorted(lp["top_logprobs"][i].values(), reverse=True)
        want = [v for _, v in step["top"]]
        assert len(got) == 5 and all(abs(a - b) < 1e-4 for a, b in zip(got, want)), (name, i, got, want)
        assert lp["top_logprobs"][i][lp["tokens"][i]] == lp["token_logprobs"][i], (i, lp)
    assert lp["text_offset"][0] == 0 and lp["text_offset"] == sorted(lp["text_offset"]), lp
    # the same request streamed: the chunks' logprobs concatenate to the non-streamed ones
    chunks = []
    stream("/v1/completions", {"model": name, "prompt": case["prompt_ids"], "temperature": 0,
                               "max_tokens": len(case["steps"]), "logprobs": 5}, chunks)
    joined = {k: sum((c[k] for c in chunks), []) for k in lp}
    assert joined == lp, (joined, lp)

# Chat: choices[].logprobs.content[] with token, logprob, bytes, top_logprobs (k, most likely
# first, the chosen one first under greedy), one entry per completion token; streamed ==
# non-streamed. (The values come from the same per-token record as the completions' above.)
s, r, _ = chat("a1", logprobs=True, top_logprobs=3)
assert s == 200, r
content = r["choices"][0]["logprobs"]["content"]
assert len(content) == r["usage"]["completion_tokens"], (content, r["usage"])
for e in content:
    assert set(e) == {"token", "logprob", "bytes", "top_logprobs"}, e
    assert len(e["top_logprobs"]) == 3 and e["top_logprobs"][0]["logprob"] == e["logprob"], e  # greedy: the top one
    assert [t["logprob"] for t in e["top_logprobs"]] == sorted((t["logprob"] for t in e["top_logprobs"]), reverse=True)
    if e["token"].isascii() and e["token"] != "\ufffd":
        assert e["bytes"] == list(e["token"].encode()), e
chunks = []
stream("/v1/chat/completions", {"model": "a1", "messages": MSGS, "temperature": 0, "max_tokens": 24,
                                "logprobs": True, "top_logprobs": 3}, chunks)
assert sum((c["content"] for c in chunks), []) == content, chunks
s, r, _ = chat("a1", logprobs=True)
assert all(e["top_logprobs"] == [] for e in r["choices"][0]["logprobs"]["content"]), r
s, r, _ = chat("a1")
assert r["choices"][0]["logprobs"] is None, r
expect_error(*chat("stories", logprobs=True, top_logprobs=21)[:2], 400, "top_logprobs", "top_logprobs 21")
expect_error(*chat("stories", top_logprobs=2)[:2], 400, "top_logprobs", "top_logprobs without logprobs")
expect_error(*call("/v1/completions", {"model": "stories", "prompt": "x", "logprobs": 21})[:2], 400, "logprobs",
             "logprobs 21")


# 11. disconnects: a streaming client that reads one chunk and closes, and a non-streaming one
#     that closes right after sending, each free their slot: /metrics shows nothing running or
#     waiting soon after, far fewer tokens were generated than asked (500 each, ignore_eos), and
#     a client served meanwhile gets its answer.
def metric(name):
    _, text, _ = call("/metrics", key=None)
    return [float(l.split()[1]) for l in text.splitlines() if l.startswith(name + " ")][0]


def raw_request(body):
    host, port = URL.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    data = json.dumps(body).encode()
    sock.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


def wait_idle():
    for _ in range(200):
        if metric("lorafit_requests_running") == 0 and metric("lorafit_requests_waiting") == 0:
            return
        time.sleep(0.05)
    raise AssertionError("a disconnected client's request still runs")


long_body = {"model": "a2", "prompt": "Once upon a time", "temperature": 0, "max_tokens": 500, "ignore_eos": True}
for streaming in (True, False):
    before = metric("lorafit_generation_tokens_total")
    sock = raw_request(dict(long_body, stream=True) if streaming else long_body)
    if streaming:
        got = b""
        while b"data: " not in got:
            got += sock.recv(4096)
    sock.close()
    s, r, _ = chat("a1")  # served while (or after) the other is dropped
    assert s == 200 and r["choices"][0]["message"]["content"] == answers["a1"], r
    wait_idle()
    spent = metric("lorafit_generation_tokens_total") - before - r["usage"]["completion_tokens"]
    assert spent < 400, f"streaming={streaming}: {spent} tokens generated for a client that left"
    print(f"disconnect (streaming={streaming}): {spent:.0f} of 500 tokens generated")

# 12. max_completion_tokens (chat) is max_tokens' newer name.
s, r, _ = chat("stories", max_tokens=None, max_completion_tokens=5)
assert s == 200 and r["usage"]["completion_tokens"] == 5 and r["choices"][0]["finish_reason"] == "length", r

# 9. metrics: Prometheus text with the counters moving.
s, text, _ = call("/metrics", key=None)
assert s == 200 and "lorafit_requests_total" in text and "lorafit_time_to_first_token_seconds_count" in text, text
total = [float(l.split()[1]) for l in text.splitlines() if l.startswith("lorafit_requests_total ")][0]
assert total >= 35, text  # 28 streaming clients + the earlier completions
print("serve_check: ok")
