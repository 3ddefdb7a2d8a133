#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang (AddressSanitizer + UBSan) and runs
# each for a time budget on a copy of its seed corpus (docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS] [BUILD_DIR]     defaults: 60, build-fuzz
#
# Exits non-zero when a harness finds something (crash, sanitizer report, uncaught exception,
# timeout, OOM, leak) and prints the reproducer's path; replay it with
#   BUILD_DIR/tests/fuzz/fuzz_<target> REPRODUCER
# The known reproducers in tests/fuzz/regressions/<target>/ are replayed first.
# Environment:
#   FUZZ_RUNS       run each harness for this many inputs instead of SECONDS_PER_HARNESS, with
#                   a fixed random seed (FUZZ_SEED, default 1): the same inputs on every machine,
#                   so a clean result is reproducible (what `make test` runs)
#   FUZZ_TARGETS    harnesses to run (default: all), e.g. "recipe jsonl"
#   FUZZ_PARALLEL   harnesses run at once (default: the number of cores)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 30)
#   FUZZ_RSS_MB     memory limit of one harness in MB (default 2048)
#   FUZZ_JOBS       build jobs (default: the number of cores)
#   FUZZ_REGRESSIONS=0  skip replaying tests/fuzz/regressions
#   CXX             the clang++ to build with (default clang++)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
build="${2:-build-fuzz}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
cores="$(nproc)"
parallel="${FUZZ_PARALLEL:-$cores}"
timeout_s="${FUZZ_TIMEOUT:-30}"
rss_mb="${FUZZ_RSS_MB:-2048}"
jobs="${FUZZ_JOBS:-$cores}"
cxx="${CXX:-clang++}"
all_targets=(safetensors model_config tokenizer chat_template recipe jsonl checkpoint lora_config)
read -r -a targets <<<"${FUZZ_TARGETS:-${all_targets[*]}}"

if ! command -v "$cxx" >/dev/null 2>&1 || ! "$cxx" --version 2>/dev/null | grep -q clang; then
  echo "[fuzz] $cxx is not clang; install clang and libFuzzer (scripts/setup.sh) or set CXX" >&2
  exit 2
fi

# ---- build ----------------------------------------------------------------------------------
start=$(date +%s)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" \
  -DSELFRL_FUZZ=ON -DSELFRL_BUILD_TESTS=OFF -DSELFRL_BUILD_EXAMPLES=OFF -DSELFRL_BUILD_PYTHON=OFF >/dev/null
cmake --build "$build" --target selfrl_fuzz -j "$jobs"
echo "[fuzz] build: $(($(date +%s) - start)) s"

bin="$build/tests/fuzz"
runs="$build/fuzz-runs"
mkdir -p "$runs"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_stack_use_after_return=1:strict_string_checks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}${UBSAN_OPTIONS:+:}print_stacktrace=1"

dict_of() {
  case "$1" in
    chat_template) echo "$root/tests/fuzz/dicts/jinja.dict" ;;
    recipe) echo "$root/tests/fuzz/dicts/yaml.dict" ;;
    *) echo "$root/tests/fuzz/dicts/json.dict" ;;
  esac
}

# ---- replay the known reproducers -----------------------------------------------------------
failed=0
if [ "${FUZZ_REGRESSIONS:-1}" != 0 ]; then
  for t in "${targets[@]}"; do
    dir="$root/tests/fuzz/regressions/$t"
    [ -d "$dir" ] || continue
    mapfile -t files < <(find "$dir" -type f ! -name '*.md' | sort)
    [ ${#files[@]} -gt 0 ] || continue
    if "$bin/fuzz_$t" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" "${files[@]}" >"$runs/$t.regressions.log" 2>&1; then
      echo "[fuzz] $t: ${#files[@]} regression inputs pass"
    else
      echo "[fuzz] $t: a regression input fails again (log: $runs/$t.regressions.log):" >&2
      grep -E "^Running: |ERROR: |SUMMARY: " "$runs/$t.regressions.log" | tail -n 4 >&2 || true
      failed=1
    fi
  done
fi

# ---- fuzz -----------------------------------------------------------------------------------
run_one() {
  local t="$1" work="$runs/$1"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -R "$root/tests/fuzz/corpus/$t/." "$work/corpus/"
  local rc=0 budget=(-max_total_time="$seconds")
  [ -z "${FUZZ_RUNS:-}" ] || budget=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
  (cd "$work" && "$bin/fuzz_$t" corpus "${budget[@]}" -timeout="$timeout_s" \
    -rss_limit_mb="$rss_mb" -dict="$(dict_of "$t")" -artifact_prefix="$work/artifacts/" \
    -print_final_stats=1 >"$work/log" 2>&1) || rc=$?
  echo "$rc" >"$work/rc"
}

for t in "${targets[@]}"; do
  [ -x "$bin/fuzz_$t" ] || { echo "[fuzz] unknown harness '$t' (have: ${all_targets[*]})" >&2; exit 2; }
  rm -f "$runs/$t/rc"
done
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  if [ -n "${FUZZ_RUNS:-}" ]; then echo "[fuzz] $t: ${FUZZ_RUNS} inputs, seed ${FUZZ_SEED:-1}"; else echo "[fuzz] $t: ${seconds} s"; fi
  run_one "$t" &
done
wait || true
# Every harness has written its status (a wait cut short by a signal must not end the run early).
for t in "${targets[@]}"; do
  while [ ! -f "$runs/$t/rc" ]; do sleep 1; done
done

printf '%-14s %10s %8s %8s %8s  %s\n' harness execs exec/s cov corpus result
for t in "${targets[@]}"; do
  work="$runs/$t"
  rc="$(cat "$work/rc" 2>/dev/null || echo 1)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)"
  cov="$( (grep -oE ' cov: [0-9]+' "$work/log" || true) | tail -n 1 | tr -dc 0-9)"
  corp="$( (grep -oE ' corp: [0-9]+' "$work/log" || true) | tail -n 1 | tr -dc 0-9)"
  if [ "$rc" = 0 ]; then
    result=ok
  else
    failed=1
    repro="$(sed -n 's/.*Test unit written to //p' "$work/log" | tail -n 1)"
    kind="$(grep -m1 -oE 'runtime error: .*' "$work/log" || true)"  # UBSan
    [ -n "$kind" ] || kind="$(grep -m1 -A1 'terminate called after throwing' "$work/log" | tail -n 1 | sed 's/^ *what(): */uncaught exception: /' || true)"
    [ -n "$kind" ] || kind="$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer): [^(]*' "$work/log" || echo "exit status $rc")"
    result="FINDING: ${kind}; reproducer: ${repro:-none}; log: $work/log"
  fi
  printf '%-14s %10s %8s %8s %8s  %s\n' "$t" "${execs:--}" "${speed:--}" "${cov:--}" "${corp:--}" "$result"
done
echo "[fuzz] total: $(($(date +%s) - start)) s"
if [ "$failed" != 0 ]; then
  echo "[fuzz] FAILED: replay a reproducer with $bin/fuzz_<harness> FILE; keep it in tests/fuzz/regressions/<harness>/" >&2
  exit 1
fi
