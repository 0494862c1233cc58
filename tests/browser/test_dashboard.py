"""Headless-Chromium test of `lorafit dashboard` against the fixture runs folder.

    python3 tests/browser/test_dashboard.py <lorafit> <source root> [<screenshot dir>]

Checks that the charts drew (the SVG polylines hold the fixture's points), that the answers
before training and after each epoch stand beside the ground truth, that markup in a model
answer is shown as text (no <script>/<img> element created, no alert fired), that a killed
run shows its warnings, and that a live run gains points when lines are appended to its
metrics.jsonl while the page is open. Saves dashboard.png (and dashboard-live.png).
Exit 0 = pass, 1 = fail, 77 = skipped (no chromium).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402


def main():
    lorafit, src = sys.argv[1], sys.argv[2]
    out_dir = sys.argv[3] if len(sys.argv) > 3 else tempfile.gettempdir()
    os.makedirs(out_dir, exist_ok=True)
    if not cdp.find_chromium():
        print("SKIP: chromium not found; scripts/setup.sh installs it")
        return 77
    work = tempfile.mkdtemp(prefix="lorafit-dash-browser-")
    runs = os.path.join(work, "runs")
    shutil.copytree(os.path.join(src, "tests/fixtures/run/runs"), runs)
    # The live run: lr2e-4 marked running (as a training process would leave it).
    st_path = os.path.join(runs, "lr2e-4", "status.json")
    st = json.load(open(st_path))
    st.update(status="running", update_time=time.time())
    st.pop("end_time", None)
    st.pop("error", None)
    json.dump(st, open(st_path, "w"))

    server = subprocess.Popen([lorafit, "dashboard", runs, "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    browser = None
    try:
        line = server.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert m, f"no URL in the dashboard's first line: {line!r} {server.stderr.read() if server.poll() is not None else ''}"
        url = m.group(1)
        print("dashboard at", url)
        browser = cdp.Browser(width=1400, height=1000)
        browser.call("Page.navigate", url=url + "?interval=500")

        # Charts: the three fixture runs are selected at first; the loss chart holds every
        # training step of each (killed 12 + lr1e-4 60 + lr2e-4 24).
        browser.wait_for("document.querySelectorAll('#runs tbody tr[data-run]').length === 3", what="the runs table")
        pts = browser.wait_for("(() => { const s = document.querySelector('#chart-loss svg');"
                               " return s && Number(s.dataset.points) === 96 ? 96 : 0; })()",
                               what="96 points in the loss chart")
        assert pts == 96
        polylines = browser.eval("document.querySelectorAll('#chart-loss polyline').length")
        assert polylines == 3, f"loss chart has {polylines} lines, expected one per run"
        for chart in ("eval_loss", "grad_norm", "learning_rate", "tokens_per_s", "memory", "cpu", "gpu_util", "gpu_power"):
            n = browser.eval(f"Number(document.querySelector('#chart-{chart} svg').dataset.points)")
            assert n > 0, f"chart {chart} drew no points"
        n = browser.eval("Number(document.querySelector('#chart-eval_loss svg').dataset.points)")
        assert n == 6 + 2 + 1, f"eval_loss points {n}, expected 6 (lr1e-4) + 2 (lr2e-4) + 1 (killed)"

        # Statuses and the killed run's warnings.
        statuses = browser.eval("[...document.querySelectorAll('#runs tbody tr')].map(t => t.dataset.run + ':' + t.querySelector('.badge').textContent)")
        assert "lr1e-4:finished" in statuses, statuses
        warn = browser.eval("document.getElementById('warnings').textContent")
        assert "metrics.jsonl: the last line is incomplete" in warn, warn
        assert "samples.jsonl is missing" in warn, warn

        # Settings difference: learning_rate and lora_r differ between the runs.
        diff = browser.eval("[...document.querySelectorAll('#config td.changed')].map(td => td.parentElement.firstChild.textContent)")
        assert "learning_rate" in diff and "lora_r" in diff, diff

        # Answers before/after beside the ground truth, for the finished run.
        browser.eval("(() => { const s = document.getElementById('focus-samples'); s.value = 'lr1e-4';"
                     " s.dispatchEvent(new Event('change')); })()")
        browser.wait_for("document.querySelectorAll('#samples .sample').length === 3", what="3 sample cards")
        card0 = browser.eval("document.querySelector('#samples .sample[data-index=\"0\"]').innerText")
        for text in ("某公司拖欠工资三个月，员工可以怎么办？", "ground truth", "员工可以向劳动监察部门投诉，或申请劳动仲裁",
                     "before", "我不知道。", "epoch 1", "可以申请劳动仲裁。", "epoch 2", "员工可以向劳动监察部门投诉或申请劳动仲裁。"):
            assert text in card0, f"{text!r} not visible in the first sample card:\n{card0}"
        tags = browser.eval("[...document.querySelectorAll('#samples .sample[data-index=\"0\"] .answer[data-tag]')].map(a => a.dataset.tag)")
        assert tags == ["before", "epoch 1", "epoch 2"], tags

        # Markup in prompts/answers is text: no element was created from it and nothing ran.
        card2 = browser.eval("document.querySelector('#samples .sample[data-index=\"2\"]').innerText")
        assert "<script>alert('xss')</script><img src=x onerror=alert(2)>" in card2, card2
        assert "<img src=x onerror=alert(3)> as text" in card2, card2
        assert "&lt;b&gt; stays literal &amp; safe" in card2, card2
        assert "Show me <b>bold</b>" in card2, card2
        injected = browser.eval("document.querySelectorAll('main script, main img, main b').length")
        assert injected == 0, f"{injected} elements were created from run data"

        # Environment of the finished run.
        browser.eval("(() => { const s = document.getElementById('focus-env'); s.value = 'lr1e-4';"
                     " s.dispatchEvent(new Event('change')); })()")
        browser.wait_for("document.getElementById('env').textContent.includes('NVIDIA GeForce RTX 4090')", what="the GPU in the environment")
        time.sleep(0.5)
        browser.call("Emulation.setDeviceMetricsOverride", width=1400, height=3400, deviceScaleFactor=1, mobile=False)
        time.sleep(0.5)
        shot = os.path.join(out_dir, "dashboard.png")
        browser.screenshot(shot)
        print("screenshot:", shot)

        # Live: append 5 steps to the running run while the page is open.
        with open(os.path.join(runs, "lr2e-4", "metrics.jsonl"), "a") as f:
            for s in range(25, 30):
                f.write(json.dumps({"step": s, "time": time.time(), "loss": 1.0 + 0.01 * s, "learning_rate": 1e-4}) + "\n")
                f.flush()
                time.sleep(0.2)
        browser.wait_for("Number(document.querySelector('#chart-loss svg').dataset.points) === 101",
                         timeout=20, what="the loss chart to gain the 5 appended points")
        browser.screenshot(os.path.join(out_dir, "dashboard-live.png"))
        assert not browser.dialogs, f"an alert() ran: {browser.dialogs}"
        print("PASS: charts, samples, text rendering, warnings, settings diff, environment, live update")
        return 0
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
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
