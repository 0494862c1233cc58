#!/usr/bin/env bash
# lorafit train --packing true end to end on stories260K: samples are packed into cutoff_len
# rows (attention kept inside each sample), the run trains, and the adapter lowers the
# held-out NLL measured by `lorafit score --adapter` as much as unpacked training does.
# Usage: bash train_packing.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M=$SRC/tests/data/stories260K
make_stories "$W/stories.jsonl" 40
HELD='Sue had a big box. One day Sue went to the yard with the big box. Tom saw the big box and said, "Can I play with your big box?" Sue said yes. They played with the big box in the yard all day.'

nll() { "$BIN" score --model "$M" --text "$HELD" --json "$@" | sed -E 's/.*"mean_nll": ([0-9.eE+-]+).*/\1/'; }
before=$(nll)

# 36 training samples of 84-104 tokens in rows of 320 tokens: about three samples per row.
"$BIN" train --model "$M" --data "$W/stories.jsonl" --output_dir "$W/run" --dataset_format text \
  --packing true --cutoff_len 320 \
  --lora_target all-linear --lora_r 8 --lora_alpha 16 --learning_rate 3e-3 --per_device_train_batch_size 2 \
  --gradient_accumulation_steps 1 --num_train_epochs 4 --logging_steps 2 --save_steps 100 \
  --eval_range 0:4 --num_samples 0 --cache_dir "$W/cache" > "$W/log.txt" 2>&1 ||
  { cat "$W/log.txt"; fail "train --packing true exited non-zero"; }
cat "$W/log.txt"
line=$(grep -E '^packing: 36 samples into [0-9]+ rows of <= 320 tokens' "$W/log.txt") || fail "no packing line"
rows=$(sed -E 's/^packing: 36 samples into ([0-9]+) rows.*/\1/' <<< "$line")
# Packing must pack: at least 2.5 samples per row on average (3 fit in most rows).
[ "$rows" -le 14 ] || fail "packing made $rows rows of 36 samples"
# Steps follow the rows: ceil(rows / 2) micro-batches per epoch, 4 epochs.
steps=$(( (rows + 1) / 2 * 4 ))
grep -q "steps per epoch, $steps steps in all" "$W/log.txt" || fail "expected $steps steps"
grep -q '^packing: true' "$W/run/config.yaml" || fail "config.yaml lacks packing: true"
grep -q '"status": *"finished"' "$W/run/status.json" || fail "status is not finished"
after=$(nll --adapter "$W/run/final")
echo "held-out mean NLL: before $before, after $after"
# Same margin as train_stories.sh (unpacked: 1.45 -> ~0.3): 0.7 of the base value is far
# outside noise (runs are deterministic).
awk -v a="$after" -v b="$before" 'BEGIN { exit !(a < 0.7 * b) }' || fail "NLL did not drop: $before -> $after"

# A bad value is an error naming the key.
if "$BIN" train --model "$M" --data "$W/stories.jsonl" --output_dir "$W/x" --packing maybe > "$W/err.txt" 2>&1; then
  fail "--packing maybe accepted"
fi
grep -qF -- '--packing: packing: "maybe" is not a boolean; write true or false' "$W/err.txt" ||
  { cat "$W/err.txt"; fail "message"; }
echo PASS
