#!/usr/bin/env bash
# Makes `import selfrl` work for Debian's python3 (the one with python3-torch): writes a .pth
# file naming BUILD_DIR/python into its site-packages. Idempotent; called by `make build`.
#   scripts/install_python.sh [BUILD_DIR=build] [PYTHON=/usr/bin/python3]
set -euo pipefail
BUILD_DIR=$(cd "${1:-build}" && pwd)
PY=${2:-/usr/bin/python3}
PKG="$BUILD_DIR/python"
if [ ! -f "$PKG/selfrl/__init__.py" ]; then
  echo "[install_python] no Python package in $PKG (built without python3-dev / pybind11-dev?); skipped"
  exit 0
fi
SITE=$("$PY" -c 'import site, sys; print(site.getsitepackages()[0])')
# This checkout first, then the other checkouts the file already named that still hold a built
# package: when this one is deleted (a fresh clone made to test, then removed), `import selfrl`
# falls back to an older checkout instead of failing. Python skips .pth lines that do not exist.
OTHERS=""
if [ -f "$SITE/selfrl.pth" ]; then
  while IFS= read -r line; do
    if [ -n "$line" ] && [ "$line" != "$PKG" ] && [ -f "$line/selfrl/__init__.py" ]; then
      OTHERS="$OTHERS$line"$'\n'
    fi
  done < "$SITE/selfrl.pth"
fi
if mkdir -p "$SITE" 2>/dev/null && printf '%s\n%s' "$PKG" "$OTHERS" > "$SITE/selfrl.pth" 2>/dev/null; then
  echo "[install_python] $PY imports selfrl from $PKG ($SITE/selfrl.pth)"
else
  echo "[install_python] cannot write $SITE (not root?). Make selfrl importable with:"
  echo "    export PYTHONPATH=$PKG"
fi
