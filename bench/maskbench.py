#!/usr/bin/env python3
"""MaskBench over ../shared/structured/maskbench: pagoda's token masks scored
as the public benchmark scores an engine.

Per schema: the grammar compiles, every valid instance is accepted token by
token (each token allowed by the mask of the state before it, EOS allowed at
the end) and every invalid instance is stopped somewhere. An invalidation
error is an invalid instance accepted. Instances are written compactly, as
json.dumps(x, separators=(",", ":"), ensure_ascii=False).

Runs `pagoda structured check --jsonl` (one process, one core), prints the
counts and the mask and compile time percentiles, and with --json writes them.
Usage: bench/maskbench.py --pagoda build/release/pagoda --tokenizer PATH
       [--data ../shared/structured/maskbench] [--limit N] [--json OUT]
"""
import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import threading


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(q / 100.0 * (len(values) - 1)))))
    return values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pagoda", default="build/release/pagoda")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--data", default="../shared/structured/maskbench")
    ap.add_argument("--limit", type=int, default=0, help="only the first N schemas (sorted by file name)")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--failures", help="write one line per failing schema here")
    ap.add_argument("--slowest", type=int, default=0,
                    help="also print the N schemas with the most masks over the p99")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.data, "*.json")))
    if args.limit:
        files = files[: args.limit]
    cases = []  # (file, valid)
    lines = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if not doc["tests"]:  # no instances: the schema passes when it compiles
            lines.append(json.dumps({"schema": doc["schema"], "text": ""}, ensure_ascii=False))
            cases.append((os.path.basename(path), None))
        for test in doc["tests"]:
            text = json.dumps(test["data"], separators=(",", ":"), ensure_ascii=False)
            lines.append(json.dumps({"schema": doc["schema"], "text": text}, ensure_ascii=False))
            cases.append((os.path.basename(path), bool(test["valid"])))

    proc = subprocess.Popen([args.pagoda, "structured", "check", "--tokenizer", args.tokenizer, "--jsonl"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def feed():
        for line in lines:
            proc.stdin.write(line + "\n")
        proc.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    results = [json.loads(line) for line in proc.stdout]
    proc.wait()
    if len(results) != len(cases):
        sys.exit(f"maskbench: {len(results)} results for {len(cases)} instances (exit {proc.returncode})")

    per_schema = collections.OrderedDict()
    compile_us = {}
    mask_us = []
    masks_by_schema = collections.defaultdict(list)
    errors = collections.Counter()
    for (name, valid), result in zip(cases, results):
        state = per_schema.setdefault(name, {"compiled": True, "valid_rejected": 0, "invalid_accepted": 0,
                                             "error": None})
        if name not in compile_us:
            compile_us[name] = result["compile_us"]
        if not result["compiled"]:
            state["compiled"] = False
            state["error"] = result["error"]
            continue
        if valid is None:
            continue
        mask_us.extend(result["mask_us"])
        masks_by_schema[name].extend(result["mask_us"])
        if valid and not result["accepted"]:
            state["valid_rejected"] += 1
        if not valid and result["accepted"]:
            state["invalid_accepted"] += 1
        if result["error"]:
            state["error"] = result["error"]
    passing = 0
    invalidation = 0
    failures = []
    for name, state in per_schema.items():
        invalidation += state["invalid_accepted"]
        ok = state["compiled"] and state["valid_rejected"] == 0 and state["invalid_accepted"] == 0
        passing += ok
        if not state["compiled"]:
            reason = (state["error"] or "").split(" at ")[0][:80]
            errors[reason] += 1
        if not ok:
            failures.append(f"{name}\t{json.dumps(state)}")
    compiled_times = [compile_us[n] for n, s in per_schema.items() if s["compiled"]]
    summary = {
        "schemas": len(per_schema),
        "passing": passing,
        "passing_pct": round(100.0 * passing / max(1, len(per_schema)), 1),
        "compile_errors": sum(1 for s in per_schema.values() if not s["compiled"]),
        "valid_rejected_schemas": sum(1 for s in per_schema.values() if s["valid_rejected"]),
        "invalidation_errors": invalidation,
        "masks": len(mask_us),
        "mask_us_p50": percentile(mask_us, 50),
        "mask_us_p99": percentile(mask_us, 99),
        "mask_us_max": max(mask_us) if mask_us else float("nan"),
        "mask_s_total": sum(mask_us) / 1e6,
        "compile_us_p50": percentile(compiled_times, 50),
        "compile_us_p99": percentile(compiled_times, 99),
    }
    for key, value in summary.items():
        print(f"{key:24} {value:.1f}" if isinstance(value, float) else f"{key:24} {value}")
    print("top compile errors:")
    for reason, n in errors.most_common(12):
        print(f"  {n:5}  {reason}")
    if args.slowest:
        p99 = summary["mask_us_p99"]
        slow = sorted(((sum(1 for t in times if t > p99), sum(times), name)
                       for name, times in masks_by_schema.items()), reverse=True)
        print(f"schemas with the most masks over the p99 ({p99:.0f} us): count, total mask ms, schema")
        for count, total, name in slow[: args.slowest]:
            print(f"  {count:6} {total / 1e3:9.1f}  {name}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    if args.failures:
        with open(args.failures, "w", encoding="utf-8") as f:
            f.write("\n".join(failures) + "\n")


if __name__ == "__main__":
    main()
