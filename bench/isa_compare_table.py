#!/usr/bin/env python3
"""Prints the table of bench/isa_compare.sh from its OUT_DIR: per weight dtype
and concurrency, output tok/s and TPOT p50 (medians of the passes) for the
native, portable and avx2 runs, and portable / native.

Usage: bench/isa_compare_table.py OUT_DIR
"""
import json
import os
import sys


def load(out, name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    m = json.load(open(path))["metrics"]
    if m["completed"] == 0:
        return None
    return m["output_throughput"], m["tpot"]["median_ms"]


def main():
    out = sys.argv[1]
    print("| weights | conc | native tok/s | portable tok/s | portable / native | native TPOT p50 "
          "| portable TPOT p50 | avx2 tok/s | avx2 TPOT p50 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for dtype in ("int8", "bf16", "f32"):
        for conc in (1, 16):
            runs = {b: load(out, f"{b}_{dtype}_c{conc}") for b in ("native", "portable", "avx2")}
            if not any(runs.values()):
                continue

            def cell(b, i, fmt):
                return fmt.format(runs[b][i]) if runs[b] else "-"
            ratio = (f"{runs['portable'][0] / runs['native'][0]:.3f}"
                     if runs["native"] and runs["portable"] else "-")
            print(f"| {dtype} | {conc} | {cell('native', 0, '{:.1f}')} | {cell('portable', 0, '{:.1f}')} | {ratio} "
                  f"| {cell('native', 1, '{:.1f} ms')} | {cell('portable', 1, '{:.1f} ms')} "
                  f"| {cell('avx2', 0, '{:.1f}')} | {cell('avx2', 1, '{:.1f} ms')} |")


if __name__ == "__main__":
    main()
