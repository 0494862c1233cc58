#!/usr/bin/env bash
# One chat template from training to serving (issue 13 item 4), end to end through the CLI:
# `train --template FILE --enable_thinking false` on a model folder whose own template is
# Qwen3's; the adapter carries FILE and enable_thinking=false; `generate` and `chat` with only
# --adapter render the prompt with FILE and enable_thinking=false (their greedy ids equal
# those of the hand-rendered prompt's ids, and differ from enable_thinking=true's); a warning
# names both templates; `merge` writes FILE with the trained enable_thinking as its default.
# Model: tests/fixtures/export/models/qwen2-tok (random, hidden 8, Qwen vocab) with the Qwen3
# tokenizer files of tests/data/qwen-tokenizer/qwen3.
# Usage: bash template_flow.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
BIN=$1 SRC=$2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
W=${KEEP_W:-$(mktemp -d)}
trap '[ -n "${KEEP_W:-}" ] || rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

M=$W/model
cp -r "$SRC/tests/fixtures/export/models/qwen2-tok" "$M"
cp "$SRC/tests/data/qwen-tokenizer/qwen3/tokenizer.json" "$SRC/tests/data/qwen-tokenizer/qwen3/tokenizer_config.json" "$M/"
# The run's own template: plain role lines; the generation prompt depends on enable_thinking.
printf '%s' '{%- for m in messages %}<|im_start|>{{ m.role }}: {{ m.content }}<|im_end|>
{% endfor %}{%- if add_generation_prompt %}<|im_start|>assistant{% if enable_thinking is defined and enable_thinking is false %} (quick){% else %} (think){% endif %}:{% endif %}' > "$W/tpl.jinja"
python3 - "$W/chat.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for a, t in [("Tom", "red ball"), ("Mia", "blue kite"), ("Ben", "big box"), ("Sue", "little boat")] * 2:
        f.write(json.dumps({"messages": [{"role": "user", "content": f"Tell me about {a}."},
                                         {"role": "assistant", "content": f"{a} had a {t}."}]}) + "\n")
PY
"$BIN" train --model "$M" --data "$W/chat.jsonl" --output_dir "$W/run" --dataset_format chat \
  --template "$W/tpl.jinja" --enable_thinking false --lora_target all-linear --lora_r 4 --learning_rate 5e-2 \
  --per_device_train_batch_size 4 --gradient_accumulation_steps 1 --max_steps 2 --logging_steps 2 --save_steps 100 \
  --num_samples 0 --cache_dir "$W/cache" --quiet > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train exited non-zero"; }
A=$W/run/final

# 1. What the adapter and the run record.
cmp -s "$A/chat_template.jinja" "$W/tpl.jinja" || fail "the adapter's chat_template.jinja is not the --template file"
python3 - "$A/lorafit_base_model.json" <<'PY' || fail "lorafit_base_model.json: $(cat "$A/lorafit_base_model.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["enable_thinking"] is False, j
PY
grep -qx 'enable_thinking: "false"' "$W/run/config.yaml" || fail "config.yaml lacks enable_thinking false"
grep -q "^template: .*tpl.jinja" "$W/run/config.yaml" || fail "config.yaml lacks the template"

# 2. generate with only --adapter: FILE's rendering with enable_thinking=false.
ids_of() { "$BIN" tokenize --tokenizer "$M" --text "$1" --json | tr -d '[] '; }
quick=$(ids_of $'<|im_start|>user: Hello there<|im_end|>\n<|im_start|>assistant (quick):')
think=$(ids_of $'<|im_start|>user: Hello there<|im_end|>\n<|im_start|>assistant (think):')
# Sampled with a fixed seed (a random tiny model's greedy ids hardly depend on the prompt): the
# same prompt ids give the same ids, and different ones (almost surely) do not.
sample=(--do_sample true --temperature 2 --top_k 0 --top_p 1 --min_p 0 --seed 7 --max_new_tokens 8)
gen() { "$BIN" generate --adapter "$A" "${sample[@]}" --json "$@"; }
by_default=$(gen --prompt "Hello there" 2>"$W/warn")
want_quick=$(gen --input_ids "$quick")
want_think=$(gen --input_ids "$think")
[ "$want_quick" != "$want_think" ] || fail "the two renderings give the same ids; the check below could not fail"
[ "$by_default" = "$want_quick" ] || fail "generate --adapter: $by_default, want $want_quick (trained template, thinking off)"
[ "$(gen --prompt "Hello there" --enable_thinking true 2>/dev/null)" = "$want_think" ] || fail "--enable_thinking true"
grep -q "warning: the adapter's chat template differs from the base model folder's" "$W/warn" ||
  fail "no template mismatch warning: $(cat "$W/warn")"

# 3. chat with only --adapter: the same prompt, so the same first answer text.
text=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["text"])' "$by_default")
answer=$(printf 'Hello there\n/quit\n' | "$BIN" chat --adapter "$A" "${sample[@]}" 2>/dev/null | head -1)
[ "$answer" = "$text" ] || fail "chat answered '$answer', generate '$text'"

# 4. merge: the trained template with enable_thinking=false as its default; the merged folder
#    renders as the adapter does, and an explicit value still wins.
"$BIN" merge --adapter "$A" --output "$W/merged" > /dev/null
head -c 200 "$W/merged/chat_template.jinja" | grep -qF '{%- if enable_thinking is not defined %}{%- set enable_thinking = false %}{%- endif %}' ||
  fail "merged template: $(head -c 200 "$W/merged/chat_template.jinja")"
[ "$(tail -c +87 "$W/merged/chat_template.jinja")" = "$(cat "$W/tpl.jinja")" ] || fail "merged template body differs"
echo '[{"role": "user", "content": "Hello there"}]' > "$W/msgs.json"
mq=$("$BIN" tokenize --tokenizer "$W/merged" --chat "$W/msgs.json" --add_generation_prompt --json | tr -d '[] ')
[ "$mq" = "$quick" ] || fail "merged folder renders $mq, want $quick"
mt=$("$BIN" tokenize --tokenizer "$W/merged" --chat "$W/msgs.json" --add_generation_prompt \
  --template_var enable_thinking=true --json | tr -d '[] ')
[ "$mt" = "$think" ] || fail "merged folder with enable_thinking=true renders $mt, want $think"
echo "template_flow.sh: ok"
