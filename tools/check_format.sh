#!/usr/bin/env bash
# Fails when a tracked .cpp/.h file differs from what clang-format makes of it
# (.clang-format at the root). Fix with: git ls-files '*.cpp' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror
echo "check_format: $(git ls-files '*.cpp' '*.h' | wc -l) files formatted"
