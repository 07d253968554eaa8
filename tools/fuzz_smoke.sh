#!/usr/bin/env bash
# Builds the libFuzzer targets (build/fuzz, clang, ASan+UBSan) and runs each
# one briefly on its seed corpus in fuzz/corpus/<target>/ plus a scratch
# corpus, so a regression that crashes on the seeds or nearby inputs fails
# the test suite. The long campaigns are in FUZZING.md.
# Usage: tools/fuzz_smoke.sh [seconds per target, default 20]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-20}
targets=(http_request api_request config tokenizer model_file gguf)
cmake -S . -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DPAGODA_FUZZ=ON \
  -DPAGODA_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  # fuzz_gguf is also seeded with the GGUF files llama.cpp made (never copied here).
  extra=()
  [[ "$t" == gguf && -d ../shared/gguf ]] && extra=(../shared/gguf)
  if build/fuzz/fuzz/fuzz_"$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 \
      -artifact_prefix="$scratch/" "$scratch/$t" "fuzz/corpus/$t" "${extra[@]}" >"$scratch/$t.log" 2>&1; then
    echo "fuzz $t: ok ($(grep -o 'Done [0-9]* runs' "$scratch/$t.log" || grep -o '#[0-9]*.*DONE' "$scratch/$t.log" | tail -1))"
  else
    echo "fuzz $t: FAILED"
    tail -40 "$scratch/$t.log"
    for a in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* "$scratch"/oom-*; do
      [[ -e "$a" ]] && { mkdir -p build/fuzz/failures; cp "$a" build/fuzz/failures/; echo "input saved: build/fuzz/failures/$(basename "$a")"; }
    done
    failed=1
  fi
done
exit $failed
