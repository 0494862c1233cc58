"""`lorafit serve` through the official openai client (tests/cli/serve_openai.sh starts the
server and writes the reference answers into TMP). Usage: serve_openai_check.py URL KEY TMP"""
import json
import sys

import openai

URL, KEY, TMP = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
MSGS = [{"role": "user", "content": "Once upon a time"}]
client = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=60)
ref = {name: json.load(open(f"{TMP}/gen_{name}.json")) for name in ["base", "a1", "a2"]}

# models.list: the base and both adapters, parents as vLLM's extra field
models = client.models.list()
ids = [m.id for m in models.data]
assert ids == ["stories", "a1", "a2", "a4"], ids
assert models.data[1].model_extra["parent"] == "stories", models.data[1]

# chat: greedy answers equal `lorafit generate` (base and adapters), and differ from each other
for name, key in [("stories", "base"), ("a1", "a1"), ("a2", "a2")]:
    r = client.chat.completions.create(model=name, messages=MSGS, temperature=0, max_tokens=24)
    assert r.choices[0].message.content == ref[key]["text"], (name, r)
    assert r.choices[0].message.role == "assistant", r
    assert r.usage.completion_tokens == len(ref[key]["output_ids"]), r.usage
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r.usage
    assert r.choices[0].finish_reason in ("stop", "length"), r
assert ref["a1"]["text"] != ref["base"]["text"] and ref["a2"]["text"] != ref["a1"]["text"], ref

# chat streamed: the deltas join to the same text; include_usage's chunk has the same usage
plain = client.chat.completions.create(model="a1", messages=MSGS, temperature=0, max_tokens=24)
text, finish, usage, chunks = "", None, None, 0
for chunk in client.chat.completions.create(model="a1", messages=MSGS, temperature=0, max_tokens=24, stream=True,
                                            stream_options={"include_usage": True}):
    chunks += 1
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        text += c.delta.content or ""
        finish = c.finish_reason or finish
assert text == plain.choices[0].message.content and finish == plain.choices[0].finish_reason, (text, finish)
assert usage == plain.usage and chunks >= 3, (usage, plain.usage, chunks)

# chat with max_completion_tokens and logprobs (the client's typed objects parse them)
r = client.chat.completions.create(model="a1", messages=MSGS, temperature=0, max_completion_tokens=6, logprobs=True,
                                   top_logprobs=2)
assert r.usage.completion_tokens == 6 and r.choices[0].finish_reason == "length", r
content = r.choices[0].logprobs.content
assert len(content) == 6 and all(len(e.top_logprobs) == 2 and e.logprob <= 0 for e in content), content
assert all(e.top_logprobs[0].logprob == e.logprob for e in content), content  # greedy: the most likely

# completions: text prompt and token-id prompt, a stop string
r = client.completions.create(model="stories", prompt="Once upon a time", temperature=0, max_tokens=11)
assert r.choices[0].text == ", there was a little girl named Lily.", r
assert r.choices[0].finish_reason == "length", r
r = client.completions.create(model="stories", prompt="Once upon a time", temperature=0, max_tokens=20, stop=["little"])
assert r.choices[0].text == ", there was a " and r.choices[0].finish_reason == "stop", r
r = client.completions.create(model="stories", prompt="Once upon a time", temperature=0, max_tokens=4, logprobs=2)
assert len(r.choices[0].logprobs.token_logprobs) == 4 and r.choices[0].logprobs.text_offset[0] == 0, r

# errors through the client: its exception types, status codes and OpenAI's error body
try:
    client.chat.completions.create(model="nope", messages=MSGS)
    raise AssertionError("unknown model accepted")
except openai.NotFoundError as e:
    assert e.status_code == 404 and e.body["param"] == "model" and e.body["code"] == "model_not_found", e.body
try:
    client.chat.completions.create(model="stories", messages=MSGS, temperature=-1)
    raise AssertionError("negative temperature accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.body["param"] == "temperature", e.body
try:
    openai.OpenAI(base_url=URL + "/v1", api_key="wrong", max_retries=0).models.list()
    raise AssertionError("wrong key accepted")
except openai.AuthenticationError as e:
    assert e.status_code == 401, e
print("serve_openai_check: ok (openai", openai.__version__ + ")")
