#!/bin/sh
# Runs every benchmark and prints the tables of docs/benchmarks.md (medians of REPS runs).
#   benchmarks/run_all.sh [BUILD_DIR=build] [REPS=3]
# Needs the bench_* programs built (make build) and the tokenizer fixtures (scripts/setup.sh).
# Run it on an otherwise idle machine: every number is wall-clock.
set -e
BUILD=${1:-build}
REPS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B="$BUILD/benchmarks"
echo "## machine"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/selfrl" info --benchmark 2>&1 | grep -i -E "blas|gflop" || true

echo; echo "## rollout (batch 1 / 8 / 64, prompt 64, 64 new tokens, 1 thread)"
sh "$ROOT/benchmarks/rollout/run_rollout_bench.sh" "$BUILD" "$REPS" 1

echo; echo "## chunked log-probs peak memory (vocab 151,936, 512 rows, with backward)"
for mode in naive chunked; do "$B/bench_token_logprobs_memory" --mode $mode; done

echo; echo "## training throughput (SFT steps, batch 8 x 256 tokens, 2 threads)"
for r in $(seq "$REPS"); do "$B/bench_train_throughput" --batch 8 --seq 256 --runs 3 --threads 2; done

echo; echo "## GRPO step split (tiny recipe scale, 2 threads)"
for r in $(seq "$REPS"); do "$B/bench_grpo_step" --runs 3 --threads 2; done

echo; echo "## tokenizer encode (8 MB mixed corpus, 1 thread)"
(cd "$ROOT" && "$B/bench_tokenizer_encode" --mb 8 --runs "$REPS" --threads 1)
(cd "$ROOT" && node tests/reference/tokenizer/bench_encode.js .cache/tokenizers tests/data/tokenizer/corpus.jsonl 8 "$REPS")
echo; echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
