#!/usr/bin/env bash
# Progress between log lines, as HF's Trainer shows it: on a terminal `lorafit train` redraws one
# live bar in place (step, loss, learning rate, tokens/s, ETA); when stdout is not a terminal it
# prints plain lines instead (no carriage returns or escape codes). The terminal is a real pty
# (python3's pty module, standard library).
# Usage: bash train_progress_tty.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
make_stories "$W/stories.jsonl" 40
# 60 steps, a log line every 20: the bar shows the last logged loss from step 20 on.
args=(train --model "$SRC/tests/data/stories260K" --data "$W/stories.jsonl" --dataset_format text --lora_r 4
      --per_device_train_batch_size 8 --gradient_accumulation_steps 1 --max_steps 60 --logging_steps 20
      --save_steps 1000 --eval_range 0:2 --num_samples 0 --cache_dir "$W/cache")

# On a pty: the raw bytes lorafit wrote to the terminal, and its exit status.
python3 - "$W/tty.out" "$BIN" "${args[@]}" --output_dir "$W/run_tty" <<'PY'
import os, pty, sys
out, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.environ["COLUMNS"] = "120"
    os.execv(argv[0], argv)
data = b""
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:  # EIO: the child closed the terminal
        break
    if not chunk:
        break
    data += chunk
_, status = os.waitpid(pid, 0)
open(out, "wb").write(data)
sys.exit(os.waitstatus_to_exitcode(status))
PY
python3 - "$W/tty.out" <<'PY' || { cat -v "$W/tty.out"; fail "terminal progress"; }
import re, sys
text = open(sys.argv[1], "rb").read().decode("utf-8")
# A redraw: carriage return, the bar line, erase-to-end-of-line. The terminal turns "\n" into "\r\n".
bar = re.compile(r"\rtrain +(\d+)% \|[█▏▎▍▌▋▊▉ ]+\| (\d+)/60(?:  loss (\d+\.\d{4}))?  lr (\d\.\d\de[-+]\d\d)  (\d+) tok/s  ETA (\d\d:\d\d|--:--)\x1b\[K")
draws = [m for m in bar.finditer(text)]
steps = [int(m.group(2)) for m in draws]
assert draws, "no live bar drawn"
assert steps == sorted(steps), f"steps go backwards: {steps}"
assert steps[-1] == 60 and int(draws[-1].group(1)) == 100, f"last draw is not 60/60 at 100%: {steps[-1]}"
mid = [m for m in draws if 1 <= int(m.group(2)) < 60]
assert mid, f"no redraw between the first and the last step: {steps}"
for m in mid:
    assert int(m.group(5)) > 0, "tokens/s not shown"
assert all(m.group(6) != "--:--" for m in mid), "no ETA before the end"
assert all(m.group(3) is None for m in mid if int(m.group(2)) < 20), "a loss before the first log"
assert any(m.group(3) for m in mid if 20 < int(m.group(2)) < 60), f"no loss on the bar after step 20: {steps}"
# in place: between two redraws only a log line ("step N/60 | ..." after an erase), no other newline
for a, b in zip(draws, draws[1:]):
    gap = text[a.end():b.start()]
    assert gap == "" or re.fullmatch(r"\r\x1b\[K(step \d+/60 \|[^\n]*\r\n)+", gap), f"not redrawn in place: {gap!r}"
print(f"tty: {len(draws)} draws, steps {steps[0]}..{steps[-1]}")
PY

# Not a terminal: plain lines only (no \r, no escape codes), the first step's at once.
"$BIN" "${args[@]}" --output_dir "$W/run_pipe" > "$W/pipe.out" 2>&1 | cat || { cat "$W/pipe.out"; fail "train into a pipe"; }
if grep -q $'\r\|\x1b' "$W/pipe.out"; then cat -v "$W/pipe.out"; fail "carriage return or escape code in piped output"; fi
grep -qE '^train step 1/60 \(2%\)  lr [0-9]\.[0-9]{2}e-[0-9]{2}  [0-9]+ tok/s  elapsed [0-9]{2}:[0-9]{2}  ETA [0-9]{2}:[0-9]{2}$' "$W/pipe.out" ||
  { cat "$W/pipe.out"; fail "no plain line for step 1"; }
# ... and no line per step: a plain line comes every 30 s without a log line, so in this short
# run the first step's is the only one (the log lines show the rest).
[ "$(grep -c '^train step ' "$W/pipe.out")" = 1 ] || { cat "$W/pipe.out"; fail "plain progress lines per step"; }
grep -q '^step 60/60 | loss ' "$W/pipe.out" || { cat "$W/pipe.out"; fail "no log line for step 60"; }
echo PASS
