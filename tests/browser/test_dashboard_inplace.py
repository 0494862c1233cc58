"""Headless-Chromium test: the dashboard updates in place (issue 16 item 4).

    python3 tests/browser/test_dashboard_inplace.py <lorafit> <source root> [<screenshot dir>]

While the page polls every 300 ms and a live run gains metric lines, a text selection in an
answer, the page's scroll position, an open chart tooltip (real mouse events) and the very
DOM nodes of the runs table stay as they were; the tooltip shows the new values. Then the
chart options: smoothing draws a debiased EMA beside the faint raw line, log y switches the
axis, "compare the ticked runs" puts both runs' answers side by side, and the CPU chart
shows the process on the machine's scale (÷ cores). Exit 0 = pass, 1 = fail, 77 = skipped.
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
    work = tempfile.mkdtemp(prefix="lorafit-dash-inplace-")
    runs = os.path.join(work, "runs")
    shutil.copytree(os.path.join(src, "tests/fixtures/run/runs"), runs)
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
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", server.stdout.readline())
        assert m, "no URL from the dashboard"
        url = m.group(1)
        browser = cdp.Browser(width=1400, height=900)
        browser.call("Page.navigate", url=url + "?interval=300")
        browser.wait_for("Number((document.querySelector('#chart-loss svg') || {dataset: {}}).dataset.points) === 96",
                         what="the loss chart")
        browser.eval("(() => { const s = document.getElementById('focus-samples'); s.value = 'lr1e-4';"
                     " s.dispatchEvent(new Event('change')); })()")
        browser.wait_for("document.querySelectorAll('#samples .sample').length === 3", what="3 sample cards")

        # Count polls: every poll fetches api/runs.
        browser.eval("(() => { window.__polls = 0; const f = window.fetch;"
                     " window.fetch = (u, o) => { if (String(u).startsWith('api/runs')) window.__polls++; return f(u, o); }; })()")
        # Remember nodes, select text in an answer, scroll the page.
        browser.eval("""(() => {
          window.__row = document.querySelector('#runs tbody tr[data-run="lr1e-4"]');
          window.__svg = document.querySelector('#chart-loss svg');
          const t = document.querySelector('#samples .sample[data-index="0"] .answer[data-tag="epoch 2"] .text');
          window.__textNode = t.firstChild;
          const r = document.createRange();
          r.setStart(t.firstChild, 0); r.setEnd(t.firstChild, 6);
          const s = getSelection(); s.removeAllRanges(); s.addRange(r);
          window.__selected = s.toString();
          window.scrollTo(0, 0);
        })()""")
        selected = browser.eval("window.__selected")
        assert len(selected) == 6, f"could not select text: {selected!r}"
        # Hover the loss chart with real mouse events (the tooltip follows the mouse).
        box = browser.eval("(() => { const b = document.querySelector('#chart-loss svg').getBoundingClientRect();"
                           " return [b.left, b.top, b.width, b.height]; })()")
        mx, my = box[0] + box[2] * 0.6, box[1] + box[3] * 0.5
        browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=mx, y=my)
        browser.wait_for("document.querySelector('#chart-loss .tooltip').style.display === 'block'", what="the tooltip")
        tip0 = browser.eval("document.querySelector('#chart-loss .tooltip').textContent")
        assert "lr2e-4 · loss" in tip0, tip0

        # Live data while the page polls: the running run gains 6 steps.
        with open(os.path.join(runs, "lr2e-4", "metrics.jsonl"), "a") as f:
            for s in range(25, 31):
                f.write(json.dumps({"step": s, "time": time.time(), "loss": 0.5, "learning_rate": 1e-4}) + "\n")
                f.flush()
                time.sleep(0.15)
        browser.wait_for("Number(document.querySelector('#chart-loss svg').dataset.points) === 102", what="the new points")
        browser.wait_for("window.__polls >= 5", what="five polls")
        state = browser.eval("""(() => ({
          row: window.__row.isConnected && window.__row === document.querySelector('#runs tbody tr[data-run="lr1e-4"]'),
          svg: window.__svg.isConnected,
          text: window.__textNode.isConnected,
          sel: getSelection().toString(),
          tip: document.querySelector('#chart-loss .tooltip').style.display,
          tipText: document.querySelector('#chart-loss .tooltip').textContent,
          scrollY: window.scrollY,
        }))()""")
        assert state["row"], "the runs table row was rebuilt by a poll"
        assert state["svg"], "the loss chart's svg was rebuilt by a poll"
        assert state["text"], "the answer's text node was rebuilt by a poll"
        assert state["sel"] == selected, f"the selection was lost: {state['sel']!r} (was {selected!r})"
        assert state["tip"] == "block", "the tooltip closed during a poll"
        # The open tooltip shows the new data: near x ≈ 34 the nearest lr2e-4 point is now
        # step 30 (it was 24 before the appended lines).
        assert "@ 24" in [l for l in tip0.split("\n") if l.startswith("lr2e-4 · loss")][0], tip0
        line = [l for l in state["tipText"].split("\n") if l.startswith("lr2e-4 · loss")][0]
        assert line == "lr2e-4 · loss: 0.5 @ 30", state["tipText"]
        # Scroll survives: scroll down, poll, compare.
        browser.eval("window.scrollTo(0, 700)")
        y0 = browser.eval("window.scrollY")
        browser.eval("window.__polls = 0")
        browser.wait_for("window.__polls >= 3", what="three polls")
        assert browser.eval("window.scrollY") == y0, "the page scrolled during a poll"

        # Smoothing: an EMA line per run beside the faint raw line, the same points counted.
        browser.eval("(() => { const s = document.getElementById('smoothing'); s.value = '0.9';"
                     " s.dispatchEvent(new Event('input')); })()")
        browser.wait_for("document.querySelectorAll('#chart-loss polyline.raw').length === 3", what="raw lines")
        n = browser.eval("document.querySelectorAll('#chart-loss polyline.smoothed').length")
        assert n == 3, f"{n} smoothed lines"
        differ = browser.eval("[...document.querySelectorAll('#chart-loss polyline.smoothed')].some((p, i) =>"
                              " p.getAttribute('points') !== document.querySelectorAll('#chart-loss polyline.raw')[i].getAttribute('points'))")
        assert differ, "smoothing changed no line"
        # TensorBoard's debiased EMA on [1, 2, 3] with weight 0.5: 1, 1.6667, 2.4286.
        ema = browser.eval("smoothSeries([1, 2, 3], 0.5).map(v => Math.round(v * 1e4) / 1e4)")
        assert ema == [1, 1.6667, 2.4286], ema
        # Log y.
        browser.eval("(() => { const c = document.getElementById('logy'); c.checked = true; c.dispatchEvent(new Event('change')); })()")
        browser.wait_for("document.querySelector('#chart-loss svg').dataset.scale === 'log'", what="a log axis")
        ticks = browser.eval("[...document.querySelectorAll('#chart-loss text[text-anchor=end]')].map(t => t.textContent)")
        assert "1" in ticks, f"log ticks {ticks}"

        # Compare answers across the ticked runs (all three are ticked at first).
        browser.eval("(() => { const c = document.getElementById('compare'); c.checked = true; c.dispatchEvent(new Event('change')); })()")
        browser.wait_for("document.querySelectorAll('#samples .sample[data-index=\"0\"] .answer[data-run]').length === 2",
                         what="two runs' answers side by side")
        runs_shown = browser.eval("[...document.querySelectorAll('#samples .sample[data-index=\"0\"] .answer[data-run]')].map(a => a.dataset.run)")
        assert sorted(runs_shown) == ["lr1e-4", "lr2e-4"], runs_shown
        card = browser.eval("document.querySelector('#samples .sample[data-index=\"0\"]').innerText")
        assert "ground truth" in card and "lr1e-4 · epoch 2" in card, card
        browser.eval("(() => { const s = document.getElementById('compare-tag'); s.value = 'before'; s.dispatchEvent(new Event('change')); })()")
        browser.wait_for("document.querySelector('#samples .sample[data-index=\"0\"]').innerText.includes('lr1e-4 · before')",
                         what="the 'before' answers")

        # CPU on one scale: the process line is divided by the cores env.json records.
        legend = browser.eval("document.querySelector('#chart-cpu .legend').textContent")
        cores = json.load(open(os.path.join(runs, "lr1e-4", "env.json")))["cpu"]["cores"]
        assert f"lr1e-4 · process_cpu_percent ÷ {cores} cores" in legend, legend
        browser.screenshot(os.path.join(out_dir, "dashboard-inplace.png"))
        print("PASS: selection, scroll, tooltip and nodes survive polls; smoothing, log y, compare, CPU scale")
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
