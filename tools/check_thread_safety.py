#!/usr/bin/env python3
"""Clang's thread-safety analysis over the rooms that hold locks.

Reads a build's compile_commands.json (any compiler), and for every .cpp of
common/, kvpool/, scheduler/ and server/ runs the same command with clang++
-fsyntax-only -Wthread-safety -Werror=thread-safety (no object files; GCC-only
flags dropped). Fails when an access to GUARDED_BY state misses its lock or a
REQUIRES function is called without it (common/thread_annotations.h).
Usage: tools/check_thread_safety.py BUILD_DIR/compile_commands.json
"""
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOMS = ("common/", "kvpool/", "scheduler/", "server/")
# GCC flags clang does not take, or that only matter for code generation.
DROP_PREFIXES = ("-Wno-maybe-uninitialized", "-fsanitize", "-march=", "-g")


def clang_command(entry, root):
    args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
    out = ["clang++"]
    skip = False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-c"):
            skip = a == "-o"
            continue
        if a == entry["file"] or a.startswith(DROP_PREFIXES):
            continue
        out.append(a)
    # Boost 1.74 detects co_await only for GCC; clang 14 has C++20 coroutines too.
    out += ["-DBOOST_ASIO_HAS_CO_AWAIT=1", "-DBOOST_ASIO_HAS_STD_COROUTINE=1"]
    # -Wno-error: only the thread-safety analysis fails this check (clang's own
    # other warnings are not this test's business).
    out += ["-fsyntax-only", "-Wno-unknown-warning-option", "-Wno-error", "-Wthread-safety", "-Werror=thread-safety",
            entry["file"]]
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    db = json.load(open(sys.argv[1]))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    entries = [e for e in db if os.path.relpath(e["file"], root).startswith(ROOMS)]
    if not entries:
        sys.exit("check_thread_safety: no source of %s in %s" % (", ".join(ROOMS), sys.argv[1]))

    def run(e):
        p = subprocess.run(clang_command(e, root), cwd=e["directory"], capture_output=True, text=True)
        return e["file"], p.returncode, p.stderr

    failed = 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for f, rc, err in pool.map(run, entries):
            if rc != 0:
                failed += 1
                print("FAILED %s\n%s" % (os.path.relpath(f, root), err))
    print("check_thread_safety: %d files, %d failed" % (len(entries), failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
