# Shared by the train*/resume*/demo* CLI tests (sourced, not a test itself: no #!/ main).
# make_stories FILE N: N short TinyStories-like records {"text": ...} in the style the
# stories260K model knows, built from a fixed rotation of names, toys and places.
make_stories() {
  local file=$1 n=$2 names=(Tom Mia Ben Sue) toys=("red ball" "blue kite" "big box" "little boat")
  local places=(park garden beach yard) i
  : > "$file"
  for ((i = 0; i < n; i++)); do
    local a=${names[$((i % 4))]} b=${names[$(((i / 4 + 1 + i) % 4))]} t=${toys[$(((i / 2) % 4))]} p=${places[$(((i / 3) % 4))]}
    [ "$a" = "$b" ] && b=${names[$(((i + 1) % 4))]}
    printf '{"text": "%s had a %s. One day %s went to the %s with the %s. %s saw the %s and said, \\"Can I play with your %s?\\" %s said yes. They played with the %s in the %s all day. They were very happy."}\n' \
      "$a" "$t" "$a" "$p" "$t" "$b" "$t" "$t" "$a" "$t" "$p" >> "$file"
  done
}
fail() { echo "FAIL: $*" >&2; exit 1; }
# wait_until SECONDS COMMAND...: runs COMMAND every 0.05 s until it succeeds (returns 0) or
# SECONDS of wall time pass (returns 1). Tests wait on conditions with generous deadlines,
# never on fixed sleeps or iteration counts: a loaded 2-core machine stretches every step.
wait_until() {
  local limit=$1 start=$SECONDS
  shift
  until "$@"; do
    ((SECONDS - start < limit)) || return 1
    sleep 0.05
  done
}
