#!/usr/bin/env bash
# lorafit serve through the official `openai` Python client (version pinned in
# tests/cli/requirements-openai.txt), installed by this script into a virtual environment
# next to the binary (reused by later runs): model listing, greedy chat (plain and streamed)
# equal to `lorafit generate --adapter`, a completion, logprobs, and an error raised by the
# client with OpenAI's status and body. SKIPs (exit 77) only when PyPI cannot be reached.
# Usage: bash serve_openai.sh /path/to/lorafit /path/to/source-root
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=$(cd "$(dirname "$1")" && pwd)/openai-venv
REQ=$HERE/requirements-openai.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" || { echo "FAIL: python3 -m venv failed (install python3-venv)" >&2; exit 1; }
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" >"$VENV/pip.log" 2>&1; then
    INDEX=${PIP_INDEX_URL:-https://pypi.org/simple}
    if ! python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip("/") + "/openai/", timeout=10)' \
      "$INDEX" 2>/dev/null; then
      echo "SKIP: the package index $INDEX cannot be reached, so the openai client cannot be installed"
      rm -rf "$VENV"
      exit 77
    fi
    cat "$VENV/pip.log" >&2
    echo "FAIL: pip install -r $REQ failed though PyPI answers" >&2
    exit 1
  fi
  cp "$REQ" "$VENV/requirements.txt"
fi

source "$HERE/serve_setup.bash" "$@"
"$VENV/bin/python" "$HERE/serve_openai_check.py" "$URL" sekret "$TMP" || {
  tail -5 "$TMP/serve.err" >&2
  fail "serve_openai_check.py"
}
kill -0 "$PID" || fail "the server died"
echo "serve_openai: all checks passed"
