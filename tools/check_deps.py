#!/usr/bin/env python3
"""The dependency rule between the rooms of the source tree (issue 31).

Reads every `#include "..."` in the repository's C++ sources (.h, .hpp, .cpp,
.cc) and fails when a room includes a room it may not. Includes are written
from the repository root ("engine/kernels/linear.h"), so the room of an
included file is read off its path the same way as the including file's.

ALLOWED below is the rule, written once: docs/ARCHITECTURE.md and the rooms'
README.md files describe it, this script is the source of truth. A room may
always include its own files. Run: python3 tools/check_deps.py [REPO_ROOT]
(ctest runs it as deps.check_rooms). Exit status 0 = clean, 1 = violations.
Python 3 standard library only.
"""
import os
import re
import sys

# Room of a path: the longest prefix that matches. Every C++ file of the tree
# must sit in one of these folders.
ROOMS = {
    "common/": "common",
    "config/": "config",
    "kvpool/": "kvpool",
    "engine/kernels/": "engine/kernels",
    "engine/model/": "engine/model",
    "engine/sampler/": "engine/sampler",
    "gguf/": "gguf",
    "formats/": "formats",
    "tokenizer/": "tokenizer",
    "scheduler/": "scheduler",
    "chat/": "chat",
    "structured/": "structured",
    "server/": "server",
    "bench/kernels/": "bench/kernels",
    "bench/": "bench",
    "tools/": "tools",
    "tests/": "tests",
    "fuzz/": "fuzz",
}

ANY = None  # may include every room

# room -> the rooms it may include (besides itself). No room but tools, tests
# and fuzz lists server: the HTTP layer is a leaf. kvpool does not know the
# engine, the scheduler does not know the server, the load generator (bench)
# does not know the engine.
ALLOWED = {
    "common": set(),
    "config": {"common"},
    "kvpool": {"common"},
    "engine/kernels": {"common", "kvpool"},
    "engine/model": {"common", "kvpool", "engine/kernels"},
    "engine/sampler": {"common", "engine/kernels"},
    "gguf": {"common"},
    "formats": {"common", "gguf", "engine/model", "engine/kernels"},
    "tokenizer": {"common", "gguf"},
    "scheduler": {"common", "kvpool", "engine/model", "engine/sampler", "tokenizer", "structured"},
    "chat": {"common", "tokenizer"},
    "structured": {"common", "tokenizer"},
    "server": {"common", "config", "kvpool", "engine/model", "engine/sampler", "gguf", "formats", "tokenizer",
               "scheduler", "chat", "structured"},
    "bench": {"common"},
    "bench/kernels": {"common", "kvpool", "engine/kernels", "engine/model", "engine/sampler", "gguf", "formats",
                      "tokenizer", "structured"},
    "tools": ANY,
    "tests": ANY,
    "fuzz": ANY,
}

# Known exceptions: (including file, included file) -> why it is tolerated.
# An exception that no longer occurs is reported too, so this list only shrinks.
EXCEPTIONS = {
    ("engine/kernels/kernels.h", "engine/model/model_config.h"):
        "RoPE kernels take RopeLayout and RopeScaling, which are declared in the model's config "
        "(types only: pagoda_kernels does not link pagoda_model). Moving the two types into "
        "engine/kernels/ would remove it.",
}

SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc")
SKIP_DIRS = {".git", "models", "node_modules"}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def room_of(path):
    best = None
    for prefix, room in ROOMS.items():
        if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, room)
    return best[1] if best else None


def sources(root):
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIP_DIRS and not (rel_dir == "." and d.startswith("build")))
        for name in sorted(filenames):
            if name.endswith(SOURCE_EXT):
                yield os.path.normpath(os.path.join(rel_dir, name)).replace(os.sep, "/")


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    errors, seen_exceptions, files, edges = [], set(), 0, {}
    for path in sources(root):
        files += 1
        room = room_of(path)
        if room is None:
            errors.append(f"{path}: not in any room (add its folder to ROOMS in tools/check_deps.py)")
            continue
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = m.group(1)
                target_room = room_of(target)
                if target_room is None:
                    errors.append(f"{path}:{lineno}: #include \"{target}\" is not a path from the repository root")
                    continue
                if target_room == room:
                    continue
                edges.setdefault(room, set()).add(target_room)
                allowed = ALLOWED[room]
                if allowed is ANY or target_room in allowed:
                    continue
                if (path, target) in EXCEPTIONS:
                    seen_exceptions.add((path, target))
                    continue
                may = ", ".join(sorted(allowed)) or "nothing"
                errors.append(f"{path}:{lineno}: {room} may not include {target_room} (#include \"{target}\"); "
                              f"{room} may include: {may}")
    for stale in sorted(set(EXCEPTIONS) - seen_exceptions):
        errors.append(f"known exception {stale[0]} -> {stale[1]} no longer occurs: remove it from EXCEPTIONS")
    if "-v" in sys.argv:
        for room in sorted(edges):
            print(f"{room} -> {', '.join(sorted(edges[room]))}")
    for e in errors:
        print(e)
    print(f"check_deps: {files} files, {len(errors)} violation(s), {len(seen_exceptions)} known exception(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
