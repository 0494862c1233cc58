"""Throughput of `lorafit serve` with concurrent streams (python3 standard library only).

Starts the server on MODEL (a Hugging Face folder with tokenizer.json; weights may be random),
then on /v1/completions with token-id prompts (random ids, seeded; `ignore_eos`, exactly
--new tokens each, greedy):
  1 stream:  --single requests one after another, each streamed;
  N streams: N clients at once (twice: rounds 1 and 2), each one streamed request.
Reports aggregate generated tokens/s (all tokens over the wall time from the first request
sent to the last [DONE]), time to first token (client side: request sent → first data
chunk) p50/p99 over every request of the N-stream rounds, and the server's resident memory
(VmRSS) after warm-up and after each round ("flat": round 2 does not grow it).

    python3 bench/serve_concurrency.py --lorafit build/lorafit --model DIR [--streams 16] [--new 32]
"""
import argparse
import json
import random
import re
import subprocess
import threading
import time
import urllib.request


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        kb = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
    return kb / 1024


def one_stream(url, prompt, new, out):
    """Streams one completion; appends (t_sent, t_first_chunk, t_done, tokens)."""
    body = {"model": "m", "prompt": prompt, "max_tokens": new, "temperature": 0, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}
    req = urllib.request.Request(url + "v1/completions", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    t0 = time.perf_counter()
    first, tokens = None, 0
    with urllib.request.urlopen(req, timeout=3600) as r:
        for line in r:
            if not line.startswith(b"data: "):
                continue
            if first is None:
                first = time.perf_counter()
            payload = line[6:].strip()
            if payload == b"[DONE]":
                break
            c = json.loads(payload)
            if c.get("usage"):
                tokens = c["usage"]["completion_tokens"]
    out.append((t0, first, time.perf_counter(), tokens))


def run(url, prompts, new):
    out = []
    threads = [threading.Thread(target=one_stream, args=(url, p, new, out)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == len(prompts) and all(o[3] == new for o in out), out
    wall = max(o[2] for o in out) - min(o[0] for o in out)
    return sum(o[3] for o in out) / wall, [o[1] - o[0] for o in out], wall


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lorafit", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--single", type=int, default=2, help="sequential requests of the 1-stream run")
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=32000, help="prompt ids are drawn below this")
    ap.add_argument("--max-model-len", type=int, default=256)
    ap.add_argument("--dtype", default="auto", help="the server's --dtype (activations)")
    a = ap.parse_args()
    rng = random.Random(0)
    prompts = [[rng.randrange(a.vocab) for _ in range(a.prompt_len)] for _ in range(a.streams + a.single + 1)]
    srv = subprocess.Popen([a.lorafit, "serve", "--model", a.model, "--served-model-name", "m", "--port", "0",
                            "--max-batch", str(a.streams), "--max-model-len", str(a.max_model_len), "--dtype", a.dtype],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = None
        for line in srv.stdout:
            m = re.search(r"(http://\S+/)v1", line)
            if m:
                url = m.group(1)
                break
        assert url, "the server printed no URL"
        run(url, [prompts[-1]], 4)  # warm-up: arenas, first-call costs
        rss0 = rss_mib(srv.pid)
        single_tps, single_ttft, single_wall = 0.0, [], 0.0
        t0 = time.perf_counter()
        toks = 0
        for p in prompts[a.streams:a.streams + a.single]:
            _, ttft, _ = run(url, [p], a.new)
            single_ttft += ttft
            toks += a.new
        single_wall = time.perf_counter() - t0
        single_tps = toks / single_wall
        tps1, ttft1, wall1 = run(url, prompts[:a.streams], a.new)
        rss1 = rss_mib(srv.pid)
        tps2, ttft2, wall2 = run(url, prompts[:a.streams], a.new)
        rss2 = rss_mib(srv.pid)
        ttft = ttft1 + ttft2
        print(f"model {a.model}, --dtype {a.dtype}, prompts {a.prompt_len} ids, {a.new} new tokens each, greedy, "
              "ignore_eos")
        print(f"1 stream:   {single_tps:.2f} tokens/s ({a.single} requests, {single_wall:.1f} s), "
              f"TTFT {', '.join(f'{x:.3f}' for x in single_ttft)} s")
        print(f"{a.streams} streams: round 1 {tps1:.2f} tokens/s ({wall1:.1f} s), round 2 {tps2:.2f} tokens/s "
              f"({wall2:.1f} s): {max(tps1, tps2) / single_tps:.2f}x one stream (best round), "
              f"{min(tps1, tps2) / single_tps:.2f}x (worst)")
        print(f"{a.streams} streams TTFT over {len(ttft)} requests: p50 {pct(ttft, 50):.3f} s, p99 {pct(ttft, 99):.3f} s")
        print(f"server RSS: after warm-up {rss0:.1f} MiB, after round 1 {rss1:.1f} MiB, after round 2 {rss2:.1f} MiB")
    finally:
        srv.terminate()
        srv.wait(timeout=30)


if __name__ == "__main__":
    main()
