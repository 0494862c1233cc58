#!/usr/bin/env python3
"""Golden tokenizer fixtures from Hugging Face `tokenizers` 0.20.3 (the reference).

Regenerate from the repository root (needs tools/golden/requirements.txt):
    /opt/gv/bin/python tools/convert_tok512.py tests/data/stories260K/tok512.bin tests/data/stories260K
    /opt/gv/bin/python tools/golden/make_tokenizer_fixtures.py

Writes tests/fixtures/tokenizer/:
  qwen2.5.json, stories260K.json  - for each tokenizer:
      "cases":   generated edge cases, full ids with and without special-token parsing,
                 and HF's decode of those ids;
      "corpus":  every "input" and "output" string of tests/data/disc-law/disc_law_eval_sft.jsonl
                 as [line, field, n_ids, fnv1a64(ids)] (the first 40 also with full ids) - the
                 ids themselves would be megabytes; the hash is FNV-1a 64 over the ids as
                 little-endian int32;
      "decode":  random id sequences (byte tokens, partial characters, special tokens) with
                 HF's decode, skip_special_tokens false and true - pins the U+FFFD policy.
  qwen_variants.json - the Qwen2.5 vocab and merges with other byte-level pipelines, made
      by editing tokenizer.json the way the test does (too big to commit as files):
      "gpt4": Split on the GPT-4 / Llama 3 regex (\\p{N}{1,3}) and model.ignore_merges true;
      "gpt2": no normalizer, pre-tokenizer ByteLevel(add_prefix_space=true, use_regex=true).
  variant_*.tokenizer.json + variant_*.json - the stories260K vocab with other pipelines
      (added-token flags lstrip/rstrip/single_word/normalized; Metaspace, Digits, Split
      behaviours) and HF's ids for a set of texts.
"""
import json
import os
import random
import sys

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


def fnv1a64(ids):
    h = FNV_OFFSET
    for i in ids:
        for b in int(i).to_bytes(4, "little", signed=True):
            h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def edge_cases(rng, specials):
    fixed = [
        "", " ", "  ", "\t", "\n", "\r\n", "a\r\nb\r\n\r\nc", "   leading and trailing   ",
        "Hello, world!", "I'm sure you'll see it's fine; we've, they're, he'd, I'LL, IT'S, DON'T",
        "’s ’ll curly apostrophes", "x  y   z    w", "tab\there\t\tand\t \tmixed",
        "1234567890 12,345.67 3.14159 1e-9 0x1F", "１２３４５ fullwidth ٠١٢٣ arabic-indic ⅫⅣ ①②",
        "emoji 🙂👍🏽👨‍👩‍👧‍👦🇨🇳🏳️‍🌈 done", "NFD: e\u0301 a\u0300 n\u0303 \u1100\u1161\u11a8 A\u030a",
        "NFC: é à ñ 각 Å", "control \x01\x02\x07\x1b[0m chars", "nul\x00in\x00the\x00middle", "\x00",
        "bom \ufeff and zwsp \u200b and nbsp\u00a0and ideographic\u3000space", "line\u2028sep para\u2029sep nel\u0085x",
        "中华人民共和国民法典第一千零七十九条", "繁體中文：離婚訴訟", "Ελληνικά Русский العربية हिन्दी ไทย 한국어 日本語",
        "code:\n    def f(x):\n        return x**2  # square\n", "{\"key\": [1, 2, 3], \"v\": null}",
        "a" * 300, " " * 50 + "x", "\n" * 20, "ab" * 200, "😀" * 30,
        "mixed<|im_end|>inside", "<|im_start|>user\nhi<|im_end|>\n", "<s>hello</s> <unk>",
        "<tool_call>{}</tool_call> <think>x</think>", "<|endoftext|><|endoftext|>", "<|im_start", "|im_end|>",
        "Once upon a time, there was a little girl named Lily.", "ſtraße 'ſ 'S 'K", "trailing space ",
        "  \n  x", " \t\n \t\nx", "!!!???...,,,", " ?!x", "a.b,c;d:e", "$100 & 50%", "@user #tag ~home",
    ]
    for s in specials:
        fixed.append(f"before {s} after")
        fixed.append(f"{s}{s}x{s}")
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789", "０１２３٠١٢३४", "ⅠⅡⅢ½¼²³",
        " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b",
        ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&`~", "。，、；：？！“”‘’《》（）【】",
        "的一是不了人我在有他这为之大来以个中上们", "αβγδεζηθ", "абвгдежз", "مرحبا", "नमस्ते", "สวัสดี", "안녕하세요",
        "é\u0301\u0300\u0308", "🙂👍🏽🇨🇳👨‍👩‍👧", "\x00\x01\x1f\x7f", "'s'S'll'LL'd're've'm't",
    ]
    out = list(fixed)
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 25)):
            pool = rng.choice(pools)
            parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        if specials and rng.random() < 0.15:
            parts.insert(rng.randint(0, len(parts)), rng.choice(specials))
        out.append("".join(parts))
    return out


def corpus_texts():
    out = []
    with open(os.path.join(DATA, "disc-law", "disc_law_eval_sft.jsonl"), encoding="utf-8") as f:
        for line_no, line in enumerate(f):
            rec = json.loads(line)
            for field in ("input", "output"):
                if isinstance(rec.get(field), str):
                    out.append((line_no, field, rec[field]))
    return out


def random_decode_ids(rng, tok, vocab_size, byte_ids):
    cases = []
    for _ in range(150):
        n = rng.randint(1, 12)
        ids = []
        for _ in range(n):
            r = rng.random()
            if r < 0.5 and byte_ids:
                ids.append(rng.choice(byte_ids))
            else:
                ids.append(rng.randrange(vocab_size))
        cases.append(ids)
    return cases


def make(name, tok_path, specials, byte_ids_fn, full_corpus=40):
    rng = random.Random(20261125)
    tok = Tokenizer.from_file(tok_path)
    cases = []
    for text in edge_cases(rng, specials):
        enc = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        enc_ns = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        cases.append({"text": text, "ids": enc, "ids_no_special": enc_ns, "decoded": tok.decode(enc, skip_special_tokens=False),
                      "decoded_skip": tok.decode(enc, skip_special_tokens=True)})
    corpus = []
    for k, (line_no, field, text) in enumerate(corpus_texts()):
        ids = tok.encode(text, add_special_tokens=False).ids
        row = [line_no, field, len(ids), fnv1a64(ids)]
        if k < full_corpus:
            row.append(ids)
        corpus.append(row)
    vs = tok.get_vocab_size(with_added_tokens=True)
    decode = []
    for ids in random_decode_ids(rng, tok, vs, byte_ids_fn(tok)):
        decode.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                       "text_skip": tok.decode(ids, skip_special_tokens=True)})
    doc = {"generated_by": "tools/golden/make_tokenizer_fixtures.py with tokenizers 0.20.3",
           "tokenizer": os.path.relpath(tok_path, DATA), "vocab_size": vs,
           "hash": "fnv1a64 over ids as little-endian int32", "cases": cases,
           "corpus_file": "disc-law/disc_law_eval_sft.jsonl", "corpus": corpus, "decode": decode}
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"{name}: {len(cases)} cases, {len(corpus)} corpus strings, {len(decode)} decode cases")


def qwen_byte_ids(tok):
    # single-byte tokens for bytes >= 0x80: pieces of multi-byte characters
    return [tok.token_to_id(chr(c)) for c in list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
            if tok.token_to_id(chr(c)) is not None] + [tok.token_to_id(chr(0x100 + k)) for k in range(0x22, 0x44)]


def stories_byte_ids(tok):
    return list(range(3, 259))


VARIANT_TEXTS = [
    "Once upon a time, there was a little girl named Lily.", "a [MASK] b", "a   [MASK]   b", "[MASK]x",
    "x<end>   y", "x <end>\n\ny", "the cat sat", "concatenate cat's", "cat", "dog cat.", "_cat cat_",
    "say HELLO there", "say hello there", "Hello hello HELLO", "Numbers 12345 and 6 7", "a1b22c333",
    "  two  spaces  ", "split,on,commas, and.dots", "", " ", "x", "[MASK]", "<end>", "x[MASK]<end>cat HELLO",
    "Lily and Tom played 123 games.", "tab\there", "new\nline", "中文 text", "🙂 ok",
]


def variants(base_path):
    base = json.load(open(base_path, encoding="utf-8"))
    extra_added = [
        {"id": 500, "content": "[MASK]", "single_word": False, "lstrip": True, "rstrip": False, "normalized": False, "special": True},
        {"id": 501, "content": "<end>", "single_word": False, "lstrip": False, "rstrip": True, "normalized": False, "special": True},
        {"id": 502, "content": "cat", "single_word": True, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
        {"id": 503, "content": "HELLO", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
    ]
    v = []
    a = json.loads(json.dumps(base))
    a["added_tokens"] = base["added_tokens"] + extra_added
    v.append(("variant_added", a))
    b = json.loads(json.dumps(base))
    b["normalizer"] = {"type": "NFC"}
    b["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": False},
        {"type": "Split", "pattern": {"String": ","}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}]}
    b["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}
    v.append(("variant_metaspace", b))
    c = json.loads(json.dumps(base))
    c["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "Split", "pattern": {"Regex": "\\s+|[.,]"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[aeiou]"}, "behavior": "Contiguous", "invert": True}]}
    v.append(("variant_split", c))
    d = json.loads(json.dumps(base))
    d["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Removed", "invert": True}
    d["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Strip", "strip_left": True, "strip_right": True},
                                                           {"type": "Replace", "pattern": {"Regex": "\\d"}, "content": "#"},
                                                           {"type": "Prepend", "prepend": "\u2581"}]}
    v.append(("variant_removed", d))
    for name, j in v:
        path = os.path.join(OUT, name + ".tokenizer.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
        tok = Tokenizer.from_file(path)
        cases = []
        for text in VARIANT_TEXTS:
            ids = tok.encode(text, add_special_tokens=False).ids
            tok.encode_special_tokens = True
            ids_ns = tok.encode(text, add_special_tokens=False).ids
            tok.encode_special_tokens = False
            cases.append({"text": text, "ids": ids, "ids_no_special": ids_ns,
                          "decoded": tok.decode(ids, skip_special_tokens=False)})
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            json.dump({"generated_by": "tools/golden/make_tokenizer_fixtures.py with tokenizers 0.20.3",
                       "tokenizer": name + ".tokenizer.json", "cases": cases}, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"{name}: {len(cases)} cases")


GPT4_PATTERN = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


def qwen_variant(base, name):
    j = json.loads(json.dumps(base))
    if name == "gpt4":
        j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = GPT4_PATTERN
        j["model"]["ignore_merges"] = True
    else:
        j["normalizer"] = None
        j["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    return j


def qwen_variants(path):
    base = json.load(open(path, encoding="utf-8"))
    rng = random.Random(7)
    texts = edge_cases(rng, ["<|im_end|>"])[:200]
    out = {"generated_by": "tools/golden/make_tokenizer_fixtures.py with tokenizers 0.20.3", "gpt4_pattern": GPT4_PATTERN}
    for name in ("gpt4", "gpt2"):
        tok = Tokenizer.from_str(json.dumps(qwen_variant(base, name)))
        out[name] = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]
    with open(os.path.join(OUT, "qwen_variants.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"qwen_variants.json: {len(texts)} texts x 2")


def main():
    os.makedirs(OUT, exist_ok=True)
    qwen_specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>"]
    make("qwen2.5.json", os.path.join(DATA, "qwen-tokenizer", "qwen2.5", "tokenizer.json"), qwen_specials, qwen_byte_ids)
    stories = os.path.join(DATA, "stories260K", "tokenizer.json")
    make("stories260K.json", stories, ["<s>", "</s>", "<unk>"], stories_byte_ids)
    variants(stories)
    qwen_variants(os.path.join(DATA, "qwen-tokenizer", "qwen2.5", "tokenizer.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
