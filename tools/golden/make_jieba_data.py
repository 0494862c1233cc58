"""Copies jieba's MIT dictionary and HMM probabilities into third_party/jieba/.

dict.txt is copied byte for byte. The HMM tables (jieba/finalseg/prob_*.py, Python dicts) are
written as one text file, one probability a line, each float as Python's repr (the shortest
string that round-trips, so strtod gives back the identical double):
    start <state> <logp>
    trans <from> <to> <logp>
    emit <state> <code point, hex> <logp>
Run with the venv pinned in requirements-eval.txt:
    /opt/eval-venv/bin/python tools/golden/make_jieba_data.py
"""
import os
import shutil

import jieba
from jieba.finalseg.prob_emit import P as emit_p
from jieba.finalseg.prob_start import P as start_p
from jieba.finalseg.prob_trans import P as trans_p

out = os.path.join(os.path.dirname(__file__), "..", "..", "third_party", "jieba")
os.makedirs(out, exist_ok=True)
shutil.copyfile(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), os.path.join(out, "dict.txt"))
lines = []
for s in "BMES":
    lines.append(f"start {s} {start_p[s]!r}")
for a in "BMES":
    for b, p in sorted(trans_p[a].items()):
        lines.append(f"trans {a} {b} {p!r}")
for s in "BMES":
    for ch, p in sorted(emit_p[s].items()):
        assert len(ch) == 1
        lines.append(f"emit {s} {ord(ch):x} {p!r}")
with open(os.path.join(out, "hmm_model.txt"), "w", encoding="ascii") as f:
    f.write("\n".join(lines) + "\n")
print("jieba", jieba.__version__, len(lines), "HMM lines")
