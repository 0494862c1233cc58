"""Writes tests/fixtures/eval/: the reference scorers run on realistic and tricky predictions.

  mcq_extract.json  the official DISC-Law-Eval McqRegexEvaluator (eval/src/eval.py of
                    FudanDISC/DISC-LawLLM, run as Python, unchanged) on predictions for real
                    bundled questions: extracted answer and score per case
  mcq_prompt.json   the official BaseModel.mcq_formatter (eval/src/models.py) prompts
  jieba_cut.json    jieba.cut(text) on the bundled QA texts and tricky strings
  qa_scores.json    LLaMA-Factory's ComputeSimilarity per row: rouge_chinese over jieba words,
                    nltk sentence_bleu (method3) over characters, ×100 rounded to 4 decimals

Usage: /opt/eval-venv/bin/python tools/golden/make_eval_fixtures.py DISC_LAWLLM_CHECKOUT
(DISC_LAWLLM_CHECKOUT/eval/src/eval.py must exist; `git worktree add` or export a checkout of
commit f40d023488b4deb5eb369c85d4e9e8ebcde35c95). Pinned: tools/golden/requirements-eval.txt.
"""
import csv
import json
import os
import sys
import types

import jieba
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_chinese import Rouge

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = os.path.join(ROOT, "tests", "data", "disc-law", "eval")
OUT = os.path.join(ROOT, "tests", "fixtures", "eval")


def load_official(checkout):
    """Imports eval/src/eval.py with stand-ins for the packages only its OpenAI scorer uses."""
    for name in ["ml3m", "ml3m.base", "openai", "pandas"]:
        sys.modules[name] = types.ModuleType(name)

    class Base:
        def __init__(self, **kw):
            pass

    sys.modules["ml3m.base"].BaseEvaluator = Base
    sys.modules["ml3m.base"].BaseOpenAIEvaluator = Base
    sys.modules["openai"].AsyncOpenAI = object
    sys.modules["pandas"].Series = type("Series", (), {})
    src = open(os.path.join(checkout, "eval", "src", "eval.py"), encoding="utf-8").read()
    mod = types.ModuleType("disc_eval")
    exec(compile(src, "eval.py", "exec"), mod.__dict__)
    return mod


class Item:
    """What _get_score reads: data_item[["output", response_name]]."""

    def __init__(self, output, response):
        self.d = {"output": output, "resp": response}

    def __getitem__(self, keys):
        return tuple(self.d[k] for k in keys)


def read_mcq():
    rows = []
    for fn in sorted(os.listdir(os.path.join(DATA, "objective"))):
        with open(os.path.join(DATA, "objective", fn), encoding="utf-8") as f:
            for i, r in enumerate(csv.DictReader(f)):
                if i < 3:
                    r["file"] = fn
                    rows.append(r)
    return rows


def mcq_predictions(r):
    gt = r["output"]
    wrong = next((c for c in "DCBA" if c not in gt), "A")  # "ABCD": a letter it has
    first = gt[0]
    opt = r[first]
    return [
        gt, f"{gt}。", f"答案：{gt}", f"答案是{gt}", f"答案应该是{'、'.join(gt)}。",
        f"根据《中华人民共和国民法典》的相关规定，本题的正确答案为{gt}，因为选项{wrong}的表述不符合法律规定。",
        f"{first}. {opt}", f"{first}．{opt}\n{wrong}．{r[wrong]}",
        f"本题考查法律规范的分类。选项{first}正确，选项{wrong}错误。",
        f"{gt}都是正确的，其他选项不符合题意，需要结合具体条文分析。",
        f"经过分析，{','.join(gt)}选项正确，其余选项错误，理由如下：……",
        "".join(chr(ord(c) + 0xFEE0) for c in gt),  # full-width letters
        f"答案：{''.join(chr(ord(c) + 0xFEE0) for c in gt)}，理由是该规定属于授权性规范。",
        opt, f"正确的是：{opt}", "", "   ", "The answer is " + gt + " because the statute says so.",
        "Answer: " + gt + ".", f"故选{gt}", f"选择{wrong}{gt}", "ABCD", f"{gt}</s>",
        f"选{first}，因为", "根据法律规定，本题应当选择", "我认为这道题的答案是", f"{gt}\n\n解析：略",
        f"答案\n{gt}", f"这是一个比较复杂的问题，{wrong}选项不属于正确答案，而{gt}选项都属于正确答案的范围",
        f"分析：A项错误；B项正确；C项错误；D项正确。综上，答案为{gt}",
    ]


def make_mcq(official):
    ev = official.McqRegexEvaluator.__new__(official.McqRegexEvaluator)
    ev.response_name = "resp"
    cases = []
    for r in read_mcq():
        for p in mcq_predictions(r):
            cases.append({
                "file": r["file"], "reference": r["output"], "prediction": p,
                "extracted": ev._extract_answer(p), "score": ev._get_score(Item(r["output"], p)),
            })
    return cases


def make_prompts(checkout):
    """BaseModel.mcq_formatter(multi, n_shot).format(question=..., options=...) of models.py."""
    import importlib.util

    src = open(os.path.join(checkout, "eval", "src", "models.py"), encoding="utf-8").read()
    start = src.index("    def mcq_formatter(")
    end = src.index("    def qa_formatter(")
    body = src[start:end]
    shots = {}
    for kind in ["sing", "mult"]:
        with open(os.path.join(checkout, "eval", "src", "few_shot", f"mcq_{kind}_examples.csv"), encoding="utf-8") as f:
            shots[kind] = list(csv.DictReader(f))

    class Frame:  # the part of a pandas DataFrame mcq_formatter uses
        def __init__(self, rows):
            self.rows = rows

        def __len__(self):
            return len(self.rows)

        def head(self, n):
            return Frame(self.rows[:n])

        def iterrows(self):
            for i, r in enumerate(self.rows):
                yield i, Row().init(r)

    class Row:
        def init(self, r):
            self.r = r
            return self

        def __getitem__(self, keys):
            return tuple(self.r[k] for k in keys)

    ns = {"support_mcq_mult": True, "support_mcq_sing": True,
          "df_sing_few_shot": Frame(shots["sing"]), "df_mult_few_shot": Frame(shots["mult"])}
    exec("class M:\n" + body, ns)
    m = ns["M"]()
    out = []
    for r in read_mcq()[::7]:
        multi = r["multichoice"] == "True"
        options = "\n".join(f"{k}. {r[k]}" for k in "ABCD")
        for n in [0, 4, 9]:
            out.append({"question": r["input"], "options": options, "multi": multi, "n_shot": n,
                        "prompt": m.mcq_formatter(multi=multi, n_shot=n).format(question=r["input"], options=options)})
    return out


TRICKY = [
    "", " ", "AT&T和B超", "c#和C++都是编程语言", "增长了3.5%，达到100.25亿元", "Hello, world! 你好",
    "第一行\r\n第二行\n第三行\t制表", "全角字符：ＡＢＣ１２３，以及“引号”和（括号）", "＊＊＊公司与***公司",
    "原告张某某诉被告李某某民间借贷纠纷一案", "他来到了网易杭研大厦", "小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
    "我来到北京清华大学", "乒乓球拍卖完了", "工信处女干事每月经过下属科室都要亲口交代24口交换机等技术性器件的安装工作",
    "结婚的和尚未结婚的", "......好的。。。真的吗？？“是的。”她说……然后", "e-mail地址是abc_def@example.com",
    "１９９８年", "2021年11月19日20时许", "宁A6E***号小型普通客车", "a.b.c 1.2.3 x%y", "𠮷野家",
]


def qa_texts():
    with open(os.path.join(DATA, "subjective", "qa_short_answer.json"), encoding="utf-8") as f:
        qa = json.load(f)
    return qa


def make_jieba(qa):
    texts = TRICKY + [r["output"] for r in qa[:40]] + [r["input"] for r in qa[:10]]
    return [{"text": t, "words": list(jieba.cut(t))} for t in texts]


def row_scores(pred, label):
    """LLaMA-Factory ComputeSimilarity.__call__, for one row."""
    hypothesis = list(jieba.cut(pred))
    reference = list(jieba.cut(label))
    if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
        result = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        rouge = Rouge()
        scores = rouge.get_scores(" ".join(hypothesis), " ".join(reference))
        result = scores[0]
    d = {k: round(v["f"] * 100, 4) for k, v in result.items()}
    bleu = sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)
    d["bleu-4"] = round(bleu * 100, 4)
    return d


def make_qa(qa):
    cases = []
    for i, r in enumerate(qa[:60]):
        ref = r["output"]
        other = qa[(i + 7) % len(qa)]["output"]
        preds = [ref, ref[: len(ref) // 2], other, ref[len(ref) // 3:] + other[:50]]
        if i < 8:
            preds += ["", "  \n ", "The defendant should be sentenced to one year.", "。。。", ref.replace("。", "！"),
                      "根据《中华人民共和国刑法》第一百三十三条之一的规定......应当判处拘役。“是的。”",
                      ref + "\n\n" + ref]
        for p in preds:
            cases.append({"prediction": p, "reference": ref, "scores": row_scores(p, ref)})
    cases.append({"prediction": "好", "reference": "好", "scores": row_scores("好", "好")})
    cases.append({"prediction": "abc", "reference": "xyz", "scores": row_scores("abc", "xyz")})
    return cases


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    checkout = sys.argv[1]
    official = load_official(checkout)
    jieba.setLogLevel(60)
    os.makedirs(OUT, exist_ok=True)
    qa = qa_texts()
    outputs = {
        "mcq_extract.json": make_mcq(official),
        "mcq_prompt.json": make_prompts(checkout),
        "jieba_cut.json": make_jieba(qa),
        "qa_scores.json": make_qa(qa),
    }
    for name, obj in outputs.items():
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=0)
            f.write("\n")
        print(name, len(obj))


if __name__ == "__main__":
    main()
