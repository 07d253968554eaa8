#!/usr/bin/env bash
# The whole test suite, as the README and .ci/run run it: installs what is
# missing, builds Release and runs every test, then rebuilds under
# AddressSanitizer+UndefinedBehaviorSanitizer and runs the suite again, and
# under ThreadSanitizer for the concurrency tests (label "concurrency"), then
# runs each libFuzzer target briefly (tools/fuzz_smoke.sh). The Release stage
# includes the ~2-minute soak and overload runs (label "soak").
# Usage: tools/test.sh [--quick]   (--quick: Release only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/setup.sh
jobs=$(nproc)

# The executables (CMake targets of the same names) that the tests selected
# by ctest arguments $@ run, scripts' interpreters aside. Asked of the built
# Release tree: a tree not built yet lists Catch2 tests as placeholders
# without their labels (catch_discover_tests runs each test binary).
test_executables() {
  ctest --test-dir build/release "$@" --show-only=json-v1 | python3 -c '
import json, os, sys
tests = json.load(sys.stdin)["tests"]
names = {os.path.basename(t["command"][0]) for t in tests if t.get("command")}
print(" ".join(sorted(names - {"bash", "sh", "python3"})))'
}

echo "== Release tests"
ctest --test-dir build/release --output-on-failure -j "$jobs"
[[ "${1:-}" == "--quick" ]] && exit 0

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
# -g1: line tables only (enough for the sanitizers' stack traces), a faster
# build; -O1 likewise, except the compute libraries (pagoda_keep_optimized in
# CMakeLists.txt).
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DPAGODA_SANITIZE=address,undefined >/dev/null
# Only what the tests of this stage run (not the benchmarks or the soak
# tool, whose tests are labelled slow). Assigned first: set -e stops on a
# failed assignment, not on a failed substitution inside a command's words.
asan_targets=$(test_executables -LE slow)
[[ -n "$asan_targets" ]] || { echo "test.sh: no test executables listed for ASan" >&2; exit 1; }
# shellcheck disable=SC2086
cmake --build build/asan -j "$jobs" --target pagoda $asan_targets
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j "$jobs" -LE slow

echo "== ThreadSanitizer (concurrency tests)"
cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DPAGODA_SANITIZE=thread >/dev/null
# Only what the concurrency tests run: their executables and the server
# binary they start.
tsan_targets=$(test_executables -L concurrency)
[[ -n "$tsan_targets" ]] || { echo "test.sh: no concurrency test executables listed" >&2; exit 1; }
# shellcheck disable=SC2086
cmake --build build/tsan -j "$jobs" --target pagoda $tsan_targets
# OMP_NUM_THREADS=1: libgomp is not built with TSan, so its barriers are
# invisible to it and every parallel region would be reported as a race; the
# servers these tests start run their model on one thread (the I/O threads,
# the engine thread and the request paths are what this stage checks).
OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build/tsan --output-on-failure -j "$jobs" -L concurrency

echo "== libFuzzer smoke runs (fuzz/, clang + ASan/UBSan; long runs in FUZZING.md)"
tools/fuzz_smoke.sh 20
