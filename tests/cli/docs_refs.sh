#!/usr/bin/env bash
# The repository is self-contained: every document under docs/ that a tracked file cites exists,
# and no file points outside the repository (../shared, /work/). Usage: docs_refs.sh LORAFIT SRC
set -euo pipefail
SRC="$2"
cd "$SRC"
fail() { echo "FAIL: $*"; exit 1; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files | grep -v '^third_party/\|^tests/data/\|^tests/fixtures/.*\.json$\|^fuzz/corpus/\|^fuzz/regressions/')
else
  mapfile -t files < <(find . -type f -not -path './build*' -not -path './.git/*' -not -path './third_party/*' \
                         -not -path './tests/data/*' -not -path './fuzz/corpus/*' -not -path './fuzz/regressions/*' | sed 's|^\./||')
fi
[ ${#files[@]} -gt 100 ] || fail "only ${#files[@]} files listed"
missing=0
# "ggml docs/gguf.md" names a file of llama.cpp's ggml repository, not ours.
while IFS= read -r hit; do
  file=${hit%%:*}
  doc=$(printf '%s' "${hit#*:}" | grep -o 'docs/[A-Za-z0-9_.-]*\.md')
  if [ ! -f "$doc" ]; then echo "$file cites $doc, which the repository lacks"; missing=1; fi
done < <(grep -Io 'ggml docs/[A-Za-z0-9_.-]*\.md\|docs/[A-Za-z0-9_.-]*\.md' "${files[@]}" | grep -v ':ggml ' | sort -u)
[ $missing -eq 0 ] || fail "cited documents missing"
# A bare design or spec document name (without docs/) is a citation too.
bare=$(grep -In '\(^\|[^/A-Za-z]\)\(DESIGN\|SPEC\)\.md' "${files[@]}" | grep -v 'docs/\(DESIGN\|SPEC\)\.md' || true)
[ -z "$bare" ] || fail "cite docs/DESIGN.md or docs/SPEC.md by their path: $bare"
outside=$(grep -In '\.\./shared\|/work/' "${files[@]}" | grep -v '^tests/cli/docs_refs.sh:' || true)
[ -z "$outside" ] || fail "files point outside the repository: $outside"
echo "docs_refs: ${#files[@]} files, every cited docs/*.md exists, nothing points outside"
