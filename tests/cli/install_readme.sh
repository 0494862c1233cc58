#!/usr/bin/env bash
# From the demo to a real run, as the README says it: `cmake --install build --prefix ~/.local`
# (the README line, run verbatim) puts lorafit and the demo data in place and `lorafit
# --version` runs from the PATH; examples/disc-law-qwen2.5-7b.yaml trains from the local
# folders it names (here: the demo model and the bundled DISC records, linked in); a hub id
# as model_name_or_path is refused with the download command and the config line.
# Usage: bash install_readme.sh /path/to/lorafit /path/to/source-root
# The README's two top commands (between its <!-- top-commands --> markers) are checked here
# for what ctest's time allows: each names a script of the repository and .ci/run runs the
# second verbatim; tests/slow/readme_commands.sh runs the first verbatim on a fresh clone
# (a full build: scripts/test.sh runs it after ctest).
set -euo pipefail
BIN=$1 SRC=$2
source "$SRC/tests/cli/train_common.bash"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
top=$(sed -n '/^<!-- top-commands/,/^<!-- \/top-commands -->/p' "$SRC/README.md" | sed -n '/^```sh$/,/^```$/p' |
      grep -v '^```' | sed 's/ *#.*//')
[ "$top" = $'bash scripts/demo.sh\nbash scripts/test.sh' ] || fail "README's top commands changed: '$top' (update tests/slow/readme_commands.sh's expectations)"
for c in demo test; do [ -f "$SRC/scripts/$c.sh" ] || fail "README names scripts/$c.sh, which is missing"; done
grep -qxF 'bash scripts/test.sh' "$SRC/.ci/run" || fail ".ci/run does not run the README's test command verbatim"
grep -q 'tests/slow/readme_commands.sh' "$SRC/scripts/test.sh" || fail "scripts/test.sh does not run the README check"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/home" "$W/repo"
ln -s "$(dirname "$BIN")" "$W/repo/build"  # the README's commands run in the clone, beside build/
cd "$W/repo"
export HOME="$W/home" XDG_CACHE_HOME="$W/cache"
install_line=$(grep -m1 '^cmake --install build --prefix ~/.local' "$SRC/README.md" | sed 's/ *#.*//')
[ -n "$install_line" ] || fail "README has no 'cmake --install build --prefix ~/.local' line"
eval "$install_line" > install.log 2>&1 || { cat install.log; fail "README install line failed: $install_line"; }
export PATH="$HOME/.local/bin:$PATH"
grep -q '^lorafit --version$' "$SRC/README.md" || fail "README lacks 'lorafit --version'"
lorafit --version | grep -q '^lorafit ' || fail "lorafit --version from the PATH"
[ "$(command -v lorafit)" = "$HOME/.local/bin/lorafit" ] || fail "lorafit is not the installed one"
for f in stories260K/model.safetensors demo/zuzu_stories.jsonl disc-law/disc_law_eval_sft.jsonl disc-law/LICENSE \
         qwen-tokenizer/qwen2.5/tokenizer.json; do
  [ -f "$HOME/.local/share/lorafit/data/$f" ] || fail "install lacks share/lorafit/data/$f"
done

# The demo model (created on first use), then the example recipe on local folders.
lorafit demo --max_steps 1 --train_range 3:5 --num_samples 0 --output_dir "$W/demo" > demo.log 2>&1 ||
  { cat demo.log; fail "installed lorafit demo"; }
mkdir -p models data/DISC-Law-SFT
ln -s "$XDG_CACHE_HOME/lorafit/demo-model" models/Qwen2.5-7B-Instruct
ln -s "$SRC/tests/data/disc-law/disc_law_eval_sft.jsonl" data/DISC-Law-SFT/DISC-Law-SFT-Pair-QA.jsonl
lorafit train --config "$SRC/examples/disc-law-qwen2.5-7b.yaml" --train_range 5:9 --max_steps 1 --num_samples 0 \
  > recipe.log 2>&1 || { cat recipe.log; fail "the example recipe on local folders"; }
[ -f runs/disc-law-qwen2.5-7b/final/adapter_model.safetensors ] || fail "the recipe wrote no adapter"
grep -q '"r": 64' runs/disc-law-qwen2.5-7b/final/adapter_config.json || fail "the recipe's LoRA r"

# A hub id is refused, naming the config line and how to download it.
printf 'data: x.jsonl\nmodel_name_or_path: Qwen/Qwen2.5-7B-Instruct\noutput_dir: out\n' > hub.yaml
if lorafit train --config hub.yaml > hub.txt 2>&1; then fail "a hub id was accepted"; fi
grep -q 'hub.yaml:2: model_name_or_path Qwen/Qwen2.5-7B-Instruct is a Hugging Face hub id' hub.txt &&
  grep -q 'huggingface-cli download Qwen/Qwen2.5-7B-Instruct --local-dir models/Qwen2.5-7B-Instruct' hub.txt ||
  { cat hub.txt; fail "hub id message"; }
[ "$(wc -l < hub.txt)" = 1 ] || { cat hub.txt; fail "hub id message is not one line"; }
echo PASS
