#!/bin/sh
# Interleaved rollout benchmark: for each repetition and batch size, one selfrl run and one
# Python-baseline run back to back, so both see the same background load; then medians per
# (impl, batch). Usage: benchmarks/rollout/run_rollout_bench.sh BUILD_DIR [REPS] [THREADS]
#
# selfrl tunes glibc's malloc at start (selfrl/core/host_allocator.h); two more rows show what
# that is worth: selfrl with glibc's defaults (SELFRL_MALLOC_TUNING=0) and the Python loop with
# the same malloc settings given through glibc's environment variables.
set -e
BUILD=${1:-build}
REPS=${2:-3}
THREADS=${3:-1}
OUT=$(mktemp)
for rep in $(seq "$REPS"); do
  for b in 1 8 64; do
    "$BUILD/benchmarks/bench_rollout" --batch "$b" --runs 1 --threads "$THREADS" >> "$OUT"
    /usr/bin/python3 "$(dirname "$0")/../python/rollout_baseline.py" --batch "$b" --runs 1 --threads "$THREADS" >> "$OUT"
    SELFRL_MALLOC_TUNING=0 "$BUILD/benchmarks/bench_rollout" --batch "$b" --runs 1 --threads "$THREADS" |
      sed 's/"impl":"selfrl"/"impl":"selfrl, glibc malloc defaults"/' >> "$OUT"
    MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=1073741824 \
      /usr/bin/python3 "$(dirname "$0")/../python/rollout_baseline.py" --batch "$b" --runs 1 --threads "$THREADS" |
      sed 's/"impl": *"python"/"impl":"python, malloc tuned as selfrl"/' >> "$OUT"
    /usr/bin/python3 "$(dirname "$0")/../python/rollout_baseline.py" --batch "$b" --runs 1 --threads "$THREADS" --floor >> "$OUT"
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| batch | impl | prefill tok/s | decode tok/s | peak RSS MB | runs |")
print("| --- | --- | --- | --- | --- | --- |")
for b in (1, 8, 64):
    for impl in ("selfrl", "python", "selfrl, glibc malloc defaults", "python, malloc tuned as selfrl"):
        r = [x for x in rows if x["batch"] == b and x["impl"] == impl]
        med = lambda k: statistics.median(x[k] for x in r)
        print(f"| {b} | {impl} | {med('prefill_tok_s'):.0f} | {med('decode_tok_s'):.0f} | {max(x['peak_rss_mb'] for x in r):.0f} | {len(r)} |")
    s = [x for x in rows if x["batch"] == b]
    dec = {impl: statistics.median(x["decode_tok_s"] for x in s if x["impl"] == impl) for impl in ("selfrl", "python", "floor")}
    print(f"|   | weight-streaming floor (matmuls only) | | {dec['floor']:.0f} | | |")
    print(f"|   | decode speed-up selfrl/python | | {dec['selfrl'] / dec['python']:.2f}x | | |")
    print(f"|   | fraction of the floor: selfrl / python | | {dec['selfrl'] / dec['floor']:.2f} / {dec['python'] / dec['floor']:.2f} | | |")
PY
echo "raw: $OUT"
