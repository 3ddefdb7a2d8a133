#!/bin/sh
# The CPU decode-attention passes (selfrl/model/decode_attention.h) on and off, interleaved:
# for each repetition every case runs once with SELFRL_FUSED_ATTENTION=1 and once with =0 (the
# torch::matmul path), back to back; the weight-streaming floor at batch 64 runs in the same loop.
# Cases: batch 1 / 8 / 64 with one sample per prompt (prompt 64, 64 new tokens, EOS ignored),
# and GRPO-shaped 8 prompts x 8 samples with 64- and 256-token prompts (shared prompt cache).
#   sh benchmarks/rollout/run_decode_attention_bench.sh BUILD_DIR [REPETITIONS] [THREADS]
# Prints a table of medians; docs/benchmarks.md ("Decode attention without batched GEMMs").
set -eu
BUILD=${1:-build}
REPS=${2:-5}
T=${3:-1}
OUT=$(mktemp)
for _ in $(seq "$REPS"); do
  for c in "b1:--batch 1" "b8:--batch 8" "b64:--batch 64" "g8p64:--batch 64 --samples 8 --prompt-len 64" \
    "g8p256:--batch 64 --samples 8 --prompt-len 256"; do
    name=${c%%:*}
    args=${c#*:}
    for f in 1 0; do
      # shellcheck disable=SC2086
      SELFRL_FUSED_ATTENTION=$f "$BUILD/benchmarks/bench_rollout" $args --new-tokens 64 --runs 1 --threads "$T" |
        sed "s/^{/{\"case\":\"$name\",\"fused\":$f,/" >> "$OUT"
    done
  done
  /usr/bin/python3 "$(dirname "$0")/../python/rollout_baseline.py" --batch 64 --runs 1 --threads "$T" --floor |
    sed 's/^{/{"case":"floor64","fused":-1,/' >> "$OUT"
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = lambda case, f, key: statistics.median(r[key] for r in rows if r["case"] == case and r["fused"] == f)
floor = med("floor64", -1, "decode_tok_s")
print("| case | decode tok/s, passes on | off (torch::matmul) | speed-up | prefill tok/s on / off | runs |")
print("| --- | --- | --- | --- | --- | --- |")
for case in ("b1", "b8", "b64", "g8p64", "g8p256"):
    on, off = med(case, 1, "decode_tok_s"), med(case, 0, "decode_tok_s")
    n = sum(1 for r in rows if r["case"] == case and r["fused"] == 1)
    print(f"| {case} | {on:.0f} | {off:.0f} | {on / off:.2f}x | {med(case, 1, 'prefill_tok_s'):.0f} / {med(case, 0, 'prefill_tok_s'):.0f} | {n} |")
print(f"| weight-streaming floor, batch 64 | {floor:.0f} | | | | |")
print(f"| batch 64 / floor | {med('b64', 1, 'decode_tok_s') / floor:.2f} | {med('b64', 0, 'decode_tok_s') / floor:.2f} | | | |")
print(f"| 8x8, 64-token prompts / floor | {med('g8p64', 1, 'decode_tok_s') / floor:.2f} | {med('g8p64', 0, 'decode_tok_s') / floor:.2f} | | | |")
PY
echo "raw: $OUT"
