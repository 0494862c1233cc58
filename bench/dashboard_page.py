"""Times the dashboard page in headless Chromium on a 100,000-step run (the page side of
bench_track_dashboard; results in docs/performance.md).

    LORAFIT_BENCH_RUN_DIR=/tmp/longrun build/bench/bench_track_dashboard --benchmark_filter=MetricsWarm
    python3 bench/dashboard_page.py build/lorafit /tmp/longrun

Reports: server start → first chart drawn (cold parse of metrics.jsonl included), and a
reload → charts drawn again (warm cache), each the median of 5.
"""
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "browser"))
import cdp  # noqa: E402

DRAWN = "(() => { const s = document.querySelector('#chart-loss svg'); return s && Number(s.dataset.points) > 0; })()"


def main(lorafit, runs):
    browser = cdp.Browser()
    cold, warm = [], []
    try:
        for _ in range(5):
            t0 = time.perf_counter()
            server = subprocess.Popen([lorafit, "dashboard", runs, "--port", "0"], stdout=subprocess.PIPE, text=True)
            url = re.search(r"http://\S+/", server.stdout.readline()).group(0)
            browser.call("Page.navigate", url=url)
            browser.wait_for(DRAWN, timeout=60, what="the loss chart")
            cold.append(time.perf_counter() - t0)
            for _ in range(1):
                t1 = time.perf_counter()
                browser.call("Page.navigate", url=url + "?again")
                browser.wait_for(DRAWN, timeout=60, what="the loss chart")
                warm.append(time.perf_counter() - t1)
            points = browser.eval("Number(document.querySelector('#chart-loss svg').dataset.points)")
            server.terminate()
            server.wait()
    finally:
        browser.close()
    print(f"loss chart points drawn: {points}")
    print(f"server start -> charts drawn (cold): median {statistics.median(cold) * 1000:.0f} ms  ({', '.join(f'{c * 1000:.0f}' for c in cold)})")
    print(f"page reload -> charts drawn (warm):  median {statistics.median(warm) * 1000:.0f} ms  ({', '.join(f'{c * 1000:.0f}' for c in warm)})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
