#!/usr/bin/env python3
"""Checks that only the per-level kernel code of a portable pagoda binary uses
instructions beyond x86-64 (AVX, AVX2, AVX-512, BMI, AMX, ...).

The kernels are compiled once per instruction-set level in namespaces
isa_avx2, isa_avx512, isa_avx512_vnni and isa_amx (engine/kernels/isa_begin.h);
everything else must run on any x86-64 CPU. A function outside those
namespaces that uses a VEX/EVEX or BMI instruction means a level's code leaked
(for example an inline function or template compiled under a level's target
and kept by the linker for baseline callers). Run by ctest on the Release
binary when it is built portable (PAGODA_NATIVE=OFF).

Usage: tools/check_isa_code.py PAGODA_BINARY
"""
import re
import subprocess
import sys

# Instructions a plain x86-64 (SSE2) CPU does not have that compilers emit
# for the levels above it: every VEX/EVEX instruction starts with 'v' (vmovups,
# vfmadd231ps, ...), plus mask registers, BMI1/2, LZCNT, MOVBE and AMX.
BEYOND_BASELINE = re.compile(
    r"^(v[a-z0-9]+|k[a-z]+[bwdq]?|andn|bextr|blsi|blsmsk|blsr|bzhi|pdep|pext|rorx|sarx|shlx|shrx|"
    r"lzcnt|movbe|ldtilecfg|sttilecfg|tilezero|tileloadd|tileloaddt1|tilestored|tilerelease|tdp[a-z0-9]+)$")
LEVEL_NAMESPACE = re.compile(r"isa_(avx2|avx512|avx512_vnni|amx)")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", sys.argv[1]], check=True,
                          capture_output=True, text=True).stdout
    function, offenders, level_functions = "", {}, 0
    counted = set()
    for line in dump.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if header:
            function = header.group(1)
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not function:
            continue
        mnemonic = parts[1].split()[0] if parts[1].split() else ""
        if not BEYOND_BASELINE.match(mnemonic):
            continue
        if LEVEL_NAMESPACE.search(function):
            if function not in counted:
                counted.add(function)
                level_functions += 1
            continue
        offenders.setdefault(function, mnemonic)
    if level_functions == 0:
        print("check_isa_code: no per-level kernel code found: is this a portable build of pagoda?")
        return 1
    if offenders:
        print(f"check_isa_code: {len(offenders)} function(s) outside the isa_* namespaces use instructions "
              "beyond x86-64:")
        for function, mnemonic in sorted(offenders.items())[:40]:
            print(f"  {mnemonic:12} {function}")
        return 1
    print(f"check_isa_code: ok ({level_functions} functions of per-level kernel code; the rest is plain x86-64)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
