#!/usr/bin/env bash
# The README's two top commands, run verbatim on a fresh clone (issue 16: "the README's
# commands are run verbatim by a test on a fresh clone"). The commands are read from README.md
# between the <!-- top-commands --> markers, so editing them there changes what runs here.
#   1. `bash scripts/demo.sh` runs in a fresh `git clone` of this repository: it installs the
#      packages (a no-op when present), builds from nothing and runs the demo; the demo's
#      closing table and runs folder must appear.
#   2. `bash scripts/test.sh` is what CI runs (.ci/run, itself on a fresh clone): the check is
#      that .ci/run runs exactly the README's line; running it again inside itself would recurse.
# Slow (a full build): not part of ctest; scripts/test.sh runs it after ctest (CONTRIBUTING.md).
# Usage: bash tests/slow/readme_commands.sh [SOURCE_ROOT]
set -euo pipefail
SRC=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
# The marked block's command lines (comments stripped).
cmds=$(sed -n '/^<!-- top-commands/,/^<!-- \/top-commands -->/p' "$SRC/README.md" | sed -n '/^```sh$/,/^```$/p' |
       grep -v '^```' | sed 's/ *#.*//')
[ "$(printf '%s\n' "$cmds" | wc -l)" = 2 ] || fail "README's top-commands block should hold two commands: '$cmds'"
demo_cmd=$(printf '%s\n' "$cmds" | sed -n 1p)
test_cmd=$(printf '%s\n' "$cmds" | sed -n 2p)
# 2: CI's entry point runs the test command verbatim.
grep -qxF "$test_cmd" "$SRC/.ci/run" || fail ".ci/run does not run the README's '$test_cmd'"
# 1: a fresh clone (HEAD of the source repository), the demo command verbatim (scripts/build.sh
# uses ccache when installed, with paths relative to the clone, so the build can hit the cache).
W="$SRC/build/readme-clone"
rm -rf "$W"
git clone -q --no-hardlinks "$SRC" "$W"
trap 'rm -rf "$W"' EXIT
cd "$W"
export XDG_CACHE_HOME="$W/.cache"
start=$SECONDS
bash -c "$demo_cmd" > demo.log 2>&1 || { tail -50 demo.log; fail "'$demo_cmd' failed on a fresh clone"; }
grep -q '^=== before -> after ===$' demo.log || { tail -50 demo.log; fail "the demo printed no before/after table"; }
grep -q '^runs folder: ' demo.log || { tail -50 demo.log; fail "the demo did not name its runs folder"; }
[ -x build/lorafit ] || fail "the demo command built no build/lorafit"
echo "readme_commands: '$demo_cmd' ran on a fresh clone in $((SECONDS - start)) s; .ci/run runs '$test_cmd'"
