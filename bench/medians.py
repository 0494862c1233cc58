"""Medians of the figures the side-by-side benchmark scripts print, one table row per label.

    python3 bench/medians.py LOG 'REGEX' ...

Each REGEX has a named group `label` and one or more other named groups (the figures); every
line of LOG that matches contributes one value per figure to its label. Prints, per label and
figure, the median, the min and max, and the number of rounds. Standard library only.
"""
import re
import statistics
import sys


def main():
    log, patterns = sys.argv[1], [re.compile(p) for p in sys.argv[2:]]
    rows = {}
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            for p in patterns:
                m = p.search(line)
                if not m:
                    continue
                d = m.groupdict()
                label = d.pop("label").strip()
                for k, v in d.items():
                    rows.setdefault((label, k), []).append(float(v))
    for (label, k), vals in rows.items():
        print(f"median {label} {k}: {statistics.median(vals):.4g} (min {min(vals):.4g}, max {max(vals):.4g}, "
              f"n {len(vals)})")


if __name__ == "__main__":
    main()
