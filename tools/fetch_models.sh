#!/usr/bin/env bash
# Puts the default model (stories260K + its tok512 tokenizer) and the Llama 2
# tokenizer under models/. Copies them from ../shared/models when that exists
# (our machines); elsewhere downloads them from the public tinyllamas
# repository, or says clearly what to do if that is impossible.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/models"
mkdir -p "$dest"
shared="${PAGODA_SHARED_MODELS:-$root/../shared/models}"
files=(stories260K.bin tok512.bin tokenizer.bin tokenizer.model)
base_url="https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K"
for f in "${files[@]}"; do
  [[ -s "$dest/$f" ]] && continue
  if [[ -s "$shared/$f" ]]; then
    cp "$shared/$f" "$dest/$f"
  elif [[ "$f" == stories260K.bin || "$f" == tok512.bin ]]; then
    src="$base_url/${f/stories260K.bin/stories260K.bin}"
    echo "fetching $f from the tinyllamas repository"
    if ! curl -fsSL --retry 2 -o "$dest/$f.part" "$src"; then
      rm -f "$dest/$f.part"
      echo "error: cannot get $f: not in $shared and the download failed." >&2
      echo "  Put stories260K.bin and tok512.bin (llama2.c format) into $dest," >&2
      echo "  or set PAGODA_SHARED_MODELS to a folder holding them." >&2
      exit 1
    fi
    mv "$dest/$f.part" "$dest/$f"
  fi
done
echo "models: $(cd "$dest" && ls | tr '\n' ' ')"
