"""Headless-Chromium test of the dashboard's evaluation section (web/eval.js).

    python3 tests/browser/test_dashboard_eval.py <lorafit> <source root> [<screenshot dir>]

A runs folder with one `lorafit eval --output_dir` result (2 models, 3 questions, one answer
changed by the adapter, one answer holding markup): the score table shows both models' numbers,
the per-question table has 3 rows beside the references, "only questions changed by
fine-tuning" leaves the 1 changed row, and markup in an answer stays text. Saves
dashboard-eval.png. Exit 0 = pass, 1 = fail, 77 = skipped (no chromium).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402


def write_eval(d):
    os.makedirs(d)
    res = {"task": "mcq", "n": 3, "truncated": 0, "models": ["base", "disc-lora"],
           "settings": {"max_new_tokens": 64, "num_few_shot": 4},
           "results": {"base": {"task": "mcq", "n": 3, "accuracy": 33.333, "per_source": {"mcq_sing_cpa": 33.333}},
                       "disc-lora": {"task": "mcq", "n": 3, "accuracy": 66.667, "per_source": {"mcq_sing_cpa": 66.667}}}}
    json.dump(res, open(os.path.join(d, "eval_results.json"), "w"))
    rows = [("base", "q1", "A", "A", "A", True), ("base", "q2", "答案是B", "C", "B", False),
            ("base", "q3", "<img src=x onerror=alert(1)>", "D", "", False),
            ("disc-lora", "q1", "A。", "A", "A", True), ("disc-lora", "q2", "C", "C", "C", True),
            ("disc-lora", "q3", "<img src=x onerror=alert(1)>", "D", "", False)]
    with open(os.path.join(d, "predictions.jsonl"), "w") as f:
        for m, i, p, ref, ans, ok in rows:
            f.write(json.dumps({"model": m, "id": i, "source": "mcq_sing_cpa", "prediction": p, "reference": ref,
                                "extracted": p, "answer": ans, "correct": ok}, ensure_ascii=False) + "\n")


def main():
    lorafit, src = sys.argv[1], sys.argv[2]
    out_dir = sys.argv[3] if len(sys.argv) > 3 else tempfile.gettempdir()
    os.makedirs(out_dir, exist_ok=True)
    if not cdp.find_chromium():
        print("SKIP: chromium not found; scripts/setup.sh installs it")
        return 77
    work = tempfile.mkdtemp(prefix="lorafit-dash-eval-")
    runs = os.path.join(work, "runs")
    write_eval(os.path.join(runs, "disc-eval"))
    server = subprocess.Popen([lorafit, "dashboard", runs, "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    browser = None
    try:
        line = server.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert m, f"no URL in the dashboard's first line: {line!r}"
        browser = cdp.Browser(width=1400, height=1000)
        browser.call("Page.navigate", url=m.group(1) + "?interval=300")
        browser.wait_for("document.querySelectorAll('#evalbox table.evalrows tbody tr').length === 3",
                         what="3 questions in the eval table")
        head = browser.eval("[...document.querySelectorAll('#evalbox table.evalscores th')].map(e => e.textContent).join('|')")
        assert head == "source|base|disc-lora", head
        cells = browser.eval("[...document.querySelectorAll('#evalbox table.evalscores td')].map(e => e.textContent).join('|')")
        assert "33.33" in cells and "66.67" in cells, cells
        changed = browser.eval("[...document.querySelectorAll('#evalbox tr.changed')].map(e => e.dataset.id).join(',')")
        assert changed == "q2", changed
        assert browser.eval("document.querySelectorAll('#evalbox img').length") == 0, "markup in an answer became an element"
        text = browser.eval("document.querySelector('#evalbox').textContent")
        assert "<img src=x onerror=alert(1)>" in text and "答案是B" in text, text[:300]
        browser.eval("(() => { const c = document.getElementById('eval-changed'); c.checked = true;"
                     " c.dispatchEvent(new Event('change')); return 1; })()")
        browser.wait_for("document.querySelectorAll('#evalbox table.evalrows tbody tr').length === 1",
                         what="only the changed question")
        browser.screenshot(os.path.join(out_dir, "dashboard-eval.png")) if hasattr(browser, "screenshot") else None
        print("PASS: eval score table, per-question answers, changed-by-fine-tuning filter, text rendering")
        return 0
    except AssertionError as e:
        print("FAIL:", e)
        return 1
    finally:
        if browser:
            browser.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
