#!/usr/bin/env bash
# lorafit chat on a real terminal (tmux): the banner names model and adapter; libedit line
# editing (cursor keys, Delete) fixes a typo before Enter; ↑ recalls the last message, also
# in a new session (history file); a """ block sends a multi-line message; tokens/s and the
# max_new_tokens cut are reported after each answer. Answers are checked against
# `lorafit generate` on the same text (greedy).
# Usage: bash chat_tty.sh /path/to/lorafit /path/to/source-root   (exit 77: no tmux)
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
command -v tmux >/dev/null || { echo "SKIP: tmux not found; scripts/setup.sh installs it"; exit 77; }
MODEL=$SRC/tests/data/stories260K
ADAPTER=$SRC/tests/fixtures/adapter/stories260K-qv-rslora
W=$(mktemp -d)
SOCK="lorafit-test-$$"
T() { tmux -L "$SOCK" "$@"; }
trap 'T kill-server 2>/dev/null || true; rm -rf "$W"' EXIT
export OMP_NUM_THREADS=1

start() {  # start NAME: a chat session in a 160x40 terminal
  T new-session -d -s "$1" -x 160 -y 40 \
    "env HOME='$W' LORAFIT_HISTORY='$W/history' '$BIN' chat --adapter '$ADAPTER' --raw --do_sample false --max_new_tokens 6; echo CHAT-EXITED; sleep 60"
}
screen() { T capture-pane -p -t "$1" -S -100; }
wait_screen() {  # wait_screen NAME FIXED-STRING
  for _ in $(seq 1 200); do
    screen "$1" | grep -qF -- "$2" && return 0
    sleep 0.1
  done
  screen "$1"; fail "the terminal never showed: $2"
}
count() { screen "$1" | grep -cF -- "$2" || true; }
wait_line() {  # wait_line NAME LINE: a whole screen line (capture-pane drops trailing spaces)
  for _ in $(seq 1 200); do
    screen "$1" | grep -qxF -- "$2" && return 0
    sleep 0.1
  done
  screen "$1"; fail "the terminal never showed the line: $2"
}

start s1
wait_screen s1 "lorafit chat · model $MODEL · adapter stories260K-qv-rslora · context"
wait_line s1 '>'
# A typo fixed with the cursor keys and Delete: "Once upon a tiXme" → "Once upon a time".
T send-keys -t s1 -l 'Once upon a tiXme'
T send-keys -t s1 Left Left Left DC Enter
want=$("$BIN" generate --adapter "$ADAPTER" --raw --prompt "Once upon a time" --do_sample false --max_new_tokens 6)
wait_screen s1 "$want"
wait_screen s1 "[the answer was cut at max_new_tokens (6); raise --max_new_tokens for longer answers]"
screen s1 | grep -Eq '^\[6 tokens, [0-9]+\.[0-9] tokens/s\]$' || { screen s1; fail "no tokens/s line"; }

# ↑ recalls the message; Ctrl-U clears the line again.
T send-keys -t s1 Up
wait_screen s1 "> Once upon a time"
[ "$(count s1 '> Once upon a time')" -ge 2 ] || { screen s1; fail "↑ did not recall the message"; }
T send-keys -t s1 C-u
T send-keys -t s1 -l '/reset'
T send-keys -t s1 Enter
wait_screen s1 "[new conversation]"

# A pasted multi-line message between """ lines.
T send-keys -t s1 -l '"""'
T send-keys -t s1 Enter
wait_line s1 '...'
T send-keys -t s1 -l 'Tom had a ball.'
T send-keys -t s1 Enter
T send-keys -t s1 -l 'One day"""'
T send-keys -t s1 Enter
want2=$("$BIN" generate --adapter "$ADAPTER" --raw --prompt "$(printf 'Tom had a ball.\nOne day')" --do_sample false --max_new_tokens 6)
wait_screen s1 "$want2"
T send-keys -t s1 -l '/quit'
T send-keys -t s1 Enter
wait_screen s1 CHAT-EXITED
# libedit writes entries vis(3)-encoded (a space is \040).
sed 's/\\040/ /g' "$W/history" | grep -qxF 'Once upon a time' || fail "history file: $(cat "$W/history" 2>/dev/null)"

# A new session starts with the saved history: ↑ shows the last message sent.
start s2
wait_line s2 '>'
T send-keys -t s2 Up
wait_screen s2 '> /quit'
T send-keys -t s2 Up Up
wait_screen s2 '> /reset'
echo PASS
