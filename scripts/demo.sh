#!/usr/bin/env bash
# The README's "run" command (make demo): the embedded self-improvement demo, from nothing.
# A tiny Llama is trained on a small labelled seed set of additions, then improves without
# labels (TTRL consensus GRPO, Intuitor self-certainty GRPO, ReST-EM on voted pseudo-labels, KnowRL-style
# introspection). Prints the per-stage table; writes $DEMO_DIR (default runs/demo): data/,
# base/ and one Hugging Face model directory per stage, summary.json and curves.svg.
#   scripts/demo.sh [BUILD_DIR] [extra selfrl demo args, e.g. --seed 1 or --quick]
set -euo pipefail
BUILD_DIR="${1:-build}"
shift || true
SELFRL="$BUILD_DIR/selfrl"
OUT="${DEMO_DIR:-runs/demo}"
if [ ! -x "$SELFRL" ]; then
  echo "error: $SELFRL not found; build first (make build)" >&2
  exit 1
fi
echo "== selfrl demo --out $OUT $* (load: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a))"
"$SELFRL" demo --out "$OUT" "$@"
echo "== plot: $OUT/curves.svg   models: $OUT/{base,ttrl,intuitor,rest_em,introspect}   data: $OUT/data"
