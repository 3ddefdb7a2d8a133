#!/bin/sh
# The shared prompt cache on and off, interleaved: GRPO-shaped decode, 64 rows = 8 prompts x 8
# samples, 64 new tokens, prompts of 64 and 256 tokens. One JSON line per run (bench_rollout).
#   sh benchmarks/rollout/run_shared_prompt_bench.sh BUILD_DIR [REPETITIONS] [THREADS]
# docs/benchmarks.md ("The shared prompt cache") has the results.
set -eu
B=${1:-build}
REPS=${2:-3}
T=${3:-1}
for i in $(seq 1 "$REPS"); do
  for pl in 64 256; do
    for s in 1 0; do
      "$B/benchmarks/bench_rollout" --batch 64 --samples 8 --prompt-len "$pl" --new-tokens 64 --runs 1 \
        --threads "$T" --share-prompts "$s"
    done
  done
done
