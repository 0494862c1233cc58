#!/usr/bin/env python3
"""Convert llama2.c's tok512.bin (stories260K) into a Hugging Face tokenizer.json.

Regenerate (from the repository root; any Python 3, no packages needed to convert):
    python3 tools/convert_tok512.py tests/data/stories260K/tok512.bin tests/data/stories260K
    /opt/gv/bin/python tools/convert_tok512.py --check tests/data/stories260K   # needs `tokenizers`

Writes tokenizer.json and tokenizer_config.json into the output folder.

tok512.bin format (llama2.c): int32 max_token_len, then for each of the 512 tokens a float32
score, an int32 length and that many bytes. llama2.c's exporter wrote SentencePiece's U+2581
as a plain space and BOS/EOS as "\\n<s>\\n" / "\\n</s>\\n"; we undo both.

The result is what transformers' LlamaConverter (legacy=True, add_prefix_space=True) makes
from a SentencePiece BPE model:
  - model BPE, byte_fallback, fuse_unk, unk "<unk>"; vocab = piece -> id.
  - merges from scores as transformers.convert_slow_tokenizer.generate_merges does: for every
    piece, each split (l, r) with both halves in the vocab, ordered locally by (id(l), id(r));
    then all of them stably sorted by (score of the piece, len(l), len(r)) descending.
  - normalizer Sequence[Prepend("▁"), Replace(" ", "▁")], no pre-tokenizer.
  - decoder Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)].
  - added tokens <unk>, <s>, </s> (special, normalized=false); post-processor adds <s>.

--check loads the result with `tokenizers` and compares it with llama2.c's own encoder (run.c:
dummy-prefix " ", one token per code point or byte fallback, then repeatedly merge the adjacent
pair whose concatenation has the highest score, leftmost on ties) on a set of sentences.
"""
import json
import os
import struct
import sys

SPM_SPACE = "\u2581"


def read_tok512(path):
    data = open(path, "rb").read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off = 4
    pieces, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        raw = data[off : off + n]
        off += n
        if len(raw) > max_len:
            raise ValueError(f"{path}: token {len(pieces)} is {len(raw)} bytes > max_token_len {max_len}")
        pieces.append(raw.decode("utf-8"))
        scores.append(float(score))
    return pieces, scores


def to_hf_pieces(pieces):
    out = []
    for i, p in enumerate(pieces):
        if i in (1, 2):
            p = p.strip("\n")  # llama2.c wrote "\n<s>\n", "\n</s>\n"
        out.append(p.replace(" ", SPM_SPACE))
    return out


def generate_merges(vocab, vocab_scores):
    """transformers 4.46 convert_slow_tokenizer.generate_merges with vocab_scores given."""
    merges = []
    for piece, score in vocab_scores:
        local = []
        for i in range(1, len(piece)):
            left, right = piece[:i], piece[i:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(m[0], m[1]) for m in merges]


def build(pieces, scores):
    hf = to_hf_pieces(pieces)
    vocab = {}
    for i, p in enumerate(hf):
        if p in vocab:
            raise ValueError(f"duplicate piece {p!r} at ids {vocab[p]} and {i}")
        vocab[p] = i
    # LlamaConverter.vocab: the first three (unk, bos, eos) get score 0.0.
    vocab_scores = [(p, 0.0 if i < 3 else s) for i, (p, s) in enumerate(zip(hf, scores))]
    merges = generate_merges(vocab, dict(vocab_scores).items())
    added = [
        {"id": i, "content": hf[i], "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i in range(3)
    ]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPM_SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPM_SPACE},
        ]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPM_SPACE}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ]},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>",
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab,
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": 512,
        "tokenizer_class": "LlamaTokenizer",
        "added_tokens_decoder": {
            str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
            for a in added
        },
    }
    return tok, config


def write_atomic(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def llama2c_encode(pieces, scores, text):
    """llama2.c run.c encode() without BOS/EOS (pieces as in tok512.bin: spaces, not U+2581)."""
    lookup = {p: i for i, p in enumerate(pieces)}
    ids = [lookup[" "]] if text else []
    for ch in text:
        if ch in lookup:
            ids.append(lookup[ch])
        else:
            ids.extend(b + 3 for b in ch.encode("utf-8"))
    while True:
        best, best_id, best_i = -1e10, -1, -1
        for i in range(len(ids) - 1):
            j = lookup.get(pieces[ids[i]] + pieces[ids[i + 1]], -1)
            if j != -1 and scores[j] > best:
                best, best_id, best_i = scores[j], j, i
        if best_i == -1:
            return ids
        ids[best_i : best_i + 2] = [best_id]


SENTENCES = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park with her friends.",
    "One day, Tom said: \"Can I have the red ball?\"",
    "The sun was shining and the birds were singing!",
    "  two leading spaces, a tab\tand a newline\nhere.",
    "Numbers 1234567890 and symbols #$%&*()[]{}~|",
    "Ünïcödé café, naïve, 中文, emoji 🙂.",
    "They were happy. The end.",
]


def check(out_dir, bin_path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    pieces, scores = read_tok512(bin_path)
    ok = True
    for s in SENTENCES:
        hf = tok.encode(s, add_special_tokens=False).ids
        ref = llama2c_encode(pieces, scores, s)
        same = hf == ref
        ok &= same
        print(("same " if same else "DIFF ") + repr(s))
        print("  tokenizers:", hf, tok.encode(s, add_special_tokens=False).tokens)
        if not same:
            print("  llama2.c:  ", ref)
        assert tok.decode(hf) == s, (tok.decode(hf), s)
    return ok


def main(argv):
    if len(argv) >= 2 and argv[0] == "--check":
        out_dir = argv[1]
        return 0 if check(out_dir, os.path.join(out_dir, "tok512.bin")) else 1
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    pieces, scores = read_tok512(argv[0])
    tok, config = build(pieces, scores)
    os.makedirs(argv[1], exist_ok=True)
    write_atomic(os.path.join(argv[1], "tokenizer.json"), json.dumps(tok, ensure_ascii=False, indent=2) + "\n")
    write_atomic(os.path.join(argv[1], "tokenizer_config.json"), json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {argv[1]}/tokenizer.json: {len(tok['model']['vocab'])} tokens, {len(tok['model']['merges'])} merges")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
