#!/usr/bin/env bash
# One-step setup on Debian 12: install missing packages, fetch the default
# model into models/, configure and build Release into build/release.
# Idempotent: a second run only rebuilds what changed.
# Usage: tools/setup.sh [--no-build]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/packages.sh build
tools/fetch_models.sh
if [[ "${1:-}" != "--no-build" ]]; then
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release -j "$(nproc)"
fi
