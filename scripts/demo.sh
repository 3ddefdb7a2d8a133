#!/usr/bin/env bash
# The README's "run" command: the most end-to-end thing libselfrl does so far.
# (The tiny self-improvement demo replaces this once the trainers and loops exist.)
set -euo pipefail
BUILD_DIR="${1:-build}"
SELFRL="$BUILD_DIR/selfrl"
OUT="${DEMO_DIR:-runs/demo}"
mkdir -p "$OUT"

echo "== selfrl info: build, BLAS and matmul throughput"
"$SELFRL" info --benchmark

echo "== write a sharded Hugging Face-layout checkpoint and validate it"
"$BUILD_DIR/examples/example_safetensors_roundtrip" "$OUT/ckpt"
"$SELFRL" inspect "$OUT/ckpt" | head -n 12

if [ -x "$BUILD_DIR/examples/example_tiny_generate" ]; then
  echo "== a tiny random Llama in Hugging Face format: save, load, generate"
  "$BUILD_DIR/examples/example_tiny_generate" "$OUT/tiny-llama"
fi
