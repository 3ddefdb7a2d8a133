#!/usr/bin/env bash
# Builds libselfrl with CUDA against the LibTorch inside an installed PyTorch and checks it on the
# GPU: the CUDA unit tests, parity with Hugging Face transformers, bf16 benchmarks, then the whole
# suite. For a machine with PyTorch (CUDA), CMake, ninja and a compiler but without the Debian
# -dev packages libselfrl builds with: those come as .deb files in DEBS_DIR (made on a Debian
# machine with `apt-get download`, see docs/building.md) and are unpacked under /tmp/selfrl-deps.
#
#   scripts/gpu_check.sh [OUT_DIR=gpu-check] [DEBS_DIR=.gpu/debs]
#
# Writes env.txt, build.log, cuda_tests.log, parity.log, python.log, bench.log and ctest.log to OUT_DIR.
set -uo pipefail
OUT_DIR=${1:-gpu-check}
DEBS=${2:-.gpu/debs}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
# GPU_CHECK_BUDGET (seconds, default 1800): later steps are cut short or skipped to end in time.
# GPU_CHECK_SKIP_BENCH=1 / GPU_CHECK_SKIP_SUITE=1 skip the benchmarks / the whole CTest suite.
BUDGET=${GPU_CHECK_BUDGET:-1800}
left() { echo $(( BUDGET - $(elapsed) )); }
PY=$(command -v python3)

{
  echo "== $(date -u)"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  grep PRETTY /etc/os-release; g++ --version | head -1; cmake --version | head -1; nvcc --version | tail -1
  "$PY" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)'
  "$PY" -c 'import sys, sysconfig, os; i = sysconfig.get_paths()["include"]; print("python", sys.version.split()[0], sys.executable, "Python.h:", os.path.exists(os.path.join(i, "Python.h")))'
  nproc
} > "$OUT_DIR/env.txt" 2>&1

# ---- dependencies from .deb files ------------------------------------------------------------
DEPS=/tmp/selfrl-deps
if [ -d "$DEBS" ]; then
  mkdir -p "$DEPS"
  for f in "$DEBS"/*.deb; do dpkg -x "$f" "$DEPS"; done
  find "$DEPS" -name '*.pc' -exec sed -i "s#^prefix=/usr#prefix=$DEPS/usr#" {} +
fi
MA=x86_64-linux-gnu
TORCH_PREFIX=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
SITE=$("$PY" -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
NV_LIBS=$(ls -d "$SITE"/nvidia/*/lib "$SITE"/nvidia/cu*/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$DEPS/usr/lib/$MA:$SITE/torch/lib:$NV_LIBS${LD_LIBRARY_PATH:-}"
export PKG_CONFIG_PATH="$DEPS/usr/lib/$MA/pkgconfig:$DEPS/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}"
PKGCONF=$(command -v pkg-config || echo "$DEPS/usr/bin/pkgconf")
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}

# ---- build -----------------------------------------------------------------------------------
B="$ROOT/build-cuda"
( cmake -S "$ROOT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSELFRL_CUDA=ON -DSELFRL_CCACHE=OFF \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$DEPS/usr;$DEPS/usr/lib/$MA/cmake" \
    -DPKG_CONFIG_EXECUTABLE="$PKGCONF" -DSELFRL_TEST_PYTHON="$PY" -DPython3_EXECUTABLE="$PY" &&
  ninja -C "$B" -k 0 ${GPU_CHECK_TARGETS:-} ) > "$OUT_DIR/build.log" 2>&1
echo "build rc=$? at $(elapsed)s" | tee -a "$OUT_DIR/build.log"
grep -E "error|Error" "$OUT_DIR/build.log" | head -60

# ---- GPU_CHECK_GDB="FILTER ...": only a backtrace of each unit-test filter, under cuda-gdb ----
if [ -n "${GPU_CHECK_GDB:-}" ]; then
  for f in $GPU_CHECK_GDB; do
    timeout 60 cuda-gdb -batch -ex run -ex bt -ex "info sharedlibrary" --args "$B/tests/selfrl_unit_tests" \
      --gtest_filter="$f" > "$OUT_DIR/gdb_$f.log" 2>&1
    grep -E "^#|signal|SIG" "$OUT_DIR/gdb_$f.log" | head -40
  done
  echo "total $(elapsed)s"
  exit 0
fi

# ---- CUDA unit tests -------------------------------------------------------------------------
if [ -x "$B/tests/selfrl_unit_tests" ]; then
  rm -rf /tmp/selfrl-gpu-export
  SELFRL_GPU_EXPORT=/tmp/selfrl-gpu-export timeout 180 "$B/tests/selfrl_unit_tests" --gtest_filter='Cuda.*' \
    > "$OUT_DIR/cuda_tests.log" 2>&1
  echo "cuda tests rc=$? at $(elapsed)s" | tee -a "$OUT_DIR/cuda_tests.log"
fi

# ---- transformers parity ---------------------------------------------------------------------
if [ -x "$B/selfrl" ]; then
  "$B/selfrl" info > "$OUT_DIR/parity.log" 2>&1
  timeout 180 "$PY" "$ROOT/scripts/gpu/hf_parity.py" "$B/selfrl" /tmp/selfrl-parity /tmp/selfrl-gpu-export \
    >> "$OUT_DIR/parity.log" 2>&1
  echo "parity rc=$? at $(elapsed)s" | tee -a "$OUT_DIR/parity.log"
fi

# ---- the Python package on this torch (CPU tests) and on the GPU --------------------------------
if [ -f "$B/python/selfrl/__init__.py" ]; then
  PYPATH="$B/python"
  # Debian's pytest only where the interpreter has none of its own.
  "$PY" -c 'import pytest' 2>/dev/null || PYPATH="$PYPATH:$DEPS/usr/lib/python3/dist-packages"
  {
    PYTHONPATH="$PYPATH" PYTHONFAULTHANDLER=1 timeout 120 "$PY" "$ROOT/scripts/gpu/python_cuda_check.py" /tmp/selfrl-parity
    echo "python cuda check rc=$?"
    PYTHONPATH="$PYPATH" SELFRL_CLI="$B/selfrl" timeout 240 "$PY" -m pytest -q -p no:cacheprovider \
      "$ROOT/tests/pyapi" 2>&1 | tail -40
    echo "pytest rc=${PIPESTATUS[0]}"
  } > "$OUT_DIR/python.log" 2>&1
  echo "python done at $(elapsed)s" | tee -a "$OUT_DIR/python.log"
  grep -E '"ok": false|passed|failed|rc=' "$OUT_DIR/python.log" | head -30
else
  echo "no Python package in $B (see build.log: python3-dev headers or pybind11 missing?)"
fi

# ---- benchmarks (bf16 on the GPU) ------------------------------------------------------------
if [ -z "${GPU_CHECK_SKIP_BENCH:-}" ] && [ -x "$B/benchmarks/bench_rollout" ]; then
  {
    for model in qwen2.5-0.5b llama-1b; do
      timeout 90 "$B/benchmarks/bench_train_throughput" --device cuda --bf16 1 --model "$model" --batch 8 --seq 1024 --runs 5
    done
    for model in qwen2.5-0.5b llama-25m; do
      for b in 1 8 64; do
        [ "$(left)" -gt 120 ] || { echo "skipped $model batch $b: out of budget"; continue; }
        timeout 60 "$B/benchmarks/bench_rollout" --device cuda --dtype bfloat16 --model "$model" --batch $b --runs 3
        timeout 90 "$PY" "$ROOT/benchmarks/python/hf_generate_baseline.py" --device cuda --dtype bfloat16 \
          --model "$model" --batch $b --runs 3 2>/dev/null
      done
    done
  } > "$OUT_DIR/bench.log" 2>&1
  echo "bench done at $(elapsed)s" | tee -a "$OUT_DIR/bench.log"
fi

# ---- the whole suite (CPU tests on this LibTorch too) ------------------------------------------
if [ -z "${GPU_CHECK_SKIP_SUITE:-}" ] && [ -x "$B/tests/selfrl_unit_tests" ] && [ "$(left)" -gt 30 ]; then
  (cd "$B" && timeout "$(( $(left) - 15 ))" ctest -j"$(nproc)" --timeout 120 --output-on-failure) \
    > "$OUT_DIR/ctest.log" 2>&1
  echo "ctest rc=$? at $(elapsed)s" | tee -a "$OUT_DIR/ctest.log"
  tail -40 "$OUT_DIR/ctest.log" | grep -E "tests passed|Failed|\*\*\*" | head -40
fi
echo "total $(elapsed)s"
