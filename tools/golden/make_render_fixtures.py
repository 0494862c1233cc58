"""Rendered + masked token sequences of DISC legal QA records, as the reference recipe builds them.

The reference (the common Qwen2.5 SFT script for DISC-Law-SFT, and what LLaMA-Factory's qwen
template gives): with the Qwen2.5 tokenizer_config's chat template,
    full   = apply_chat_template([system, user=input, assistant=output], tokenize=True)
    prompt = apply_chat_template([system, user=input], add_generation_prompt=True, tokenize=True)
    labels = [-100] * len(prompt) + full[len(prompt):]
    truncate ids and labels to cutoff_len
So the reference trains the reply, its `<|im_end|>` and the "\n" the template writes after it.
lorafit trains the reply and `<|im_end|>` but masks that final "\n" (template glue the model never
has to produce: generation stops at <|im_end|>); tests/unit/test_train_render.cpp checks every
other token and label equal, and that exact one-token difference.

Regenerate (from the repository root):
    /opt/gv/bin/python tools/golden/make_render_fixtures.py
writes tests/fixtures/render/disc_law_qwen2.5.json (transformers 4.46.3, tokenizers 0.20.3).
"""
import json
import pathlib

from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
SYSTEM = "你是一个法律专家，请根据用户的问题给出专业的回答"
CUTOFF = 384
LINES = [1, 2, 3, 4, 5, 6, 50, 150, 299, 300]  # 1-based lines of disc_law_eval_sft.jsonl


def main():
    tok = AutoTokenizer.from_pretrained(ROOT / "tests/data/qwen-tokenizer/qwen2.5")
    lines = (ROOT / "tests/data/disc-law/disc_law_eval_sft.jsonl").read_text(encoding="utf-8").splitlines()
    cases = []
    for ln in LINES:
        rec = json.loads(lines[ln - 1])
        msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": rec["input"]}]
        full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": rec["output"]}], tokenize=True)
        prompt = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
        assert full[: len(prompt)] == prompt, ln
        labels = [-100] * len(prompt) + full[len(prompt):]
        cases.append({"line": ln, "full_len": len(full), "prompt_len": len(prompt),
                      "input_ids": full[:CUTOFF], "labels": labels[:CUTOFF]})
    out = {"source": "tests/data/disc-law/disc_law_eval_sft.jsonl", "system": SYSTEM, "cutoff_len": CUTOFF,
           "tokenizer": "tests/data/qwen-tokenizer/qwen2.5", "transformers": __import__("transformers").__version__,
           "cases": cases}
    path = ROOT / "tests/fixtures/render/disc_law_qwen2.5.json"
    path.write_text(json.dumps(out, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
