#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer under ASan + UBSan, SECONDS per target (default 60):
#   bash scripts/fuzz.sh [SECONDS] [TARGET ...]      e.g. bash scripts/fuzz.sh 300 jinja dataset
# Targets: safetensors json_config adapter tokenizer_json tokenizer_config jinja dataset yaml
# dashboard_http serve_request (fuzz/fuzz_<target>.cpp). Configures build-fuzz with clang (-DLORAFIT_FUZZ=ON),
# builds the targets and runs each on its seeds in fuzz/corpus/<target> (new inputs go to
# build-fuzz/corpus/<target>), niced, one after another. Prints per target the inputs tried
# (libFuzzer's number_of_executed_units), executions per second, coverage, corpus size and
# crashes (libFuzzer stops a target at its first), and a summary line; exits 1 if any target
# crashed. A crash leaves build-fuzz/crash-<target>-<hash>: reproduce with
#   build-fuzz/fuzz/fuzz_<target> build-fuzz/crash-<target>-<hash>
# then fix it, copy the input to fuzz/regressions/<target>/ (ctest replays it) and add a unit
# test with the exact message where the class of bug needs one.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
all=(safetensors json_config adapter tokenizer_json tokenizer_config jinja dataset yaml dashboard_http serve_request)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# libFuzzer's runtime is in Debian's libclang-rt-14-dev (clang 14 alone does not bring it).
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (apt-get install clang)"; exit 2; }
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer "$probe/p.cpp" -o "$probe/p" 2>/dev/null; then
  echo "fuzz: libFuzzer runtime missing; installing libclang-rt-14-dev"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends libclang-rt-14-dev
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLORAFIT_FUZZ=ON -DLORAFIT_CUDA=OFF -DLORAFIT_BENCH=OFF "${launcher[@]}" >/dev/null
build_targets=()
for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
nice -n "${LORAFIT_FUZZ_NICE:-10}" cmake --build build-fuzz --target "${build_targets[@]}"

# One process, one thread each (libFuzzer's default, as -jobs=1), one target after another.
# Leak checks are off (the parsers' caches are process-lifetime by design); every other
# ASan/UBSan report is a crash. LORAFIT_FUZZ_NICE (default 10) is the runs' niceness.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
nice_level="${LORAFIT_FUZZ_NICE:-10}"
total_units=0
crashed=()
printf '%-18s %12s %8s %8s %8s %8s %s\n' target inputs exec/s cov corpus crashes result
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  log="build-fuzz/fuzz-$t.log"
  before=$(ls build-fuzz/ | grep -c "^crash-$t-" || true)
  set +e
  nice -n "$nice_level" "build-fuzz/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1 "${dict[@]}" -artifact_prefix="build-fuzz/crash-$t-" \
    "build-fuzz/corpus/$t" "fuzz/corpus/$t" > "$log" 2>&1
  rc=$?
  set -e
  units=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  after=$(ls build-fuzz/ | grep -c "^crash-$t-" || true)
  result=ok
  if [ $rc -ne 0 ]; then
    result="CRASH (rc $rc): $(ls -t build-fuzz/crash-$t-* 2>/dev/null | head -1); see $log"
    crashed+=("$t")
  fi
  total_units=$((total_units + ${units:-0}))
  printf '%-18s %12s %8s %8s %8s %8s %s\n' "$t" "${units:-?}" "${speed:-?}" "${cov:-?}" "${corp:-?}" \
    "$((after - before))" "$result"
done
echo "fuzz: ${#targets[@]} targets x ${secs}s, ${total_units} inputs tried, ${#crashed[@]} crashed${crashed[*]:+: ${crashed[*]}}"
[ ${#crashed[@]} -eq 0 ]
