"""Reads lorafit's TensorBoard event files back with the `tensorboard` package itself and
compares every scalar with metrics.jsonl of the same run.

    /opt/gv/bin/python -m pip install tensorboard      # developer machine only; not in CI
    LORAFIT_BENCH_RUN_DIR=/tmp/tb build/bench/bench_track_dashboard --benchmark_filter=MetricsWarm
    /opt/gv/bin/python tools/check_tensorboard.py /tmp/tb/long-run

(any run folder written with report_to: tensorboard works). TensorBoard's own loader checks
the TFRecord length and data CRCs (tensorflow_stub raises DataLossError on a mismatch) and
parses the Event protobufs; values are compared as float32, which is what simple_value holds.
Exit 0 when every scalar matches.
"""
import glob
import json
import math
import os
import struct
import sys


def main(run_dir):
    from tensorboard.backend.event_processing import event_accumulator, event_file_loader

    files = sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*")))
    if not files:
        print(f"no events.out.tfevents.* in {run_dir}")
        return 1
    # 1. Raw records through TensorBoard's loader (CRC-checked) — every record must parse.
    n_records = 0
    for f in files:
        for event in event_file_loader.EventFileLoader(f).Load():
            n_records += 1
            if n_records == 1:
                assert event.file_version == "brain.Event:2", event.file_version
    # 2. Scalars as TensorBoard shows them.
    acc = event_accumulator.EventAccumulator(run_dir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    expected = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            for k, v in row.items():
                if k in ("step", "time") or not isinstance(v, (int, float)):
                    continue
                tag = f"eval/{k[5:]}" if k.startswith("eval_") else f"train/{k}"
                expected.setdefault(tag, []).append((row["step"], v))
    f32 = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]  # noqa: E731
    assert sorted(tags) == sorted(expected), (sorted(tags), sorted(expected))
    n_values = 0
    for tag in tags:
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        want = expected[tag]
        assert len(got) == len(want), (tag, len(got), len(want))
        for (gs, gv), (ws, wv) in zip(got, want):
            assert gs == ws and (gv == f32(wv) or (math.isnan(gv) and math.isnan(wv))), (tag, gs, gv, ws, wv)
            n_values += 1
    print(f"OK: {len(files)} event file(s), {n_records} records read by tensorboard "
          f"(CRC-checked); {len(tags)} tags, {n_values} scalars equal metrics.jsonl as float32")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
