#!/usr/bin/env python3
"""n > 1 against separate requests: one completion with `n` choices on a long
prompt, against `n` concurrent requests for the same prompt that cannot share
its KV pages (each its own `cache_salt`, as if they were different prompts).

The runs alternate (shared, separate, shared, ...) so both see the same
machine state; each run uses fresh salts, so nothing is cached from an
earlier run. Prints the median wall time of each and their ratio, and the
prefix-cache hit tokens the server counted during the shared runs.

Usage (a running server; BENCHMARKS.md has the recorded run):
  bench/n_choices_bench.py --url http://127.0.0.1:18990 --prompt-len 1500 \
      --n 4 --max-tokens 16 --runs 5
"""
import argparse
import json
import os
import random
import statistics
import threading
import time
import urllib.request


def post(url, body, timeout=600):
    req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def metric(url, name):
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def shared_run(url, prompt, n, max_tokens, salt):
    body = {"prompt": prompt, "n": n, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 1.0,
            "seed": 1, "cache_salt": salt}
    start = time.perf_counter()
    reply = post(url, body)
    elapsed = time.perf_counter() - start
    assert len(reply["choices"]) == n, reply
    assert reply["usage"]["completion_tokens"] == n * max_tokens, reply["usage"]
    return elapsed


def separate_run(url, prompt, n, max_tokens, salt):
    errors = []

    def one(i):
        body = {"prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 1.0, "seed": 1 + i,
                "cache_salt": f"{salt}-{i}"}
        try:
            reply = post(url, body)
            assert reply["usage"]["completion_tokens"] == max_tokens, reply["usage"]
        except Exception as e:  # reported after the run
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--prompt-len", type=int, default=1500, help="prompt tokens (random ids)")
    ap.add_argument("--vocab", type=int, default=512, help="ids are drawn from [3, vocab)")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    prompt = [rng.randrange(3, args.vocab) for _ in range(args.prompt_len)]
    tag = f"nbench-{os.getpid()}-{time.time_ns()}"  # salts new to the server, whatever ran before
    shared_run(args.url, prompt, args.n, 1, f"{tag}-warm")  # warm-up, not timed
    shared, separate = [], []
    hits = 0.0
    for r in range(args.runs):
        before = metric(args.url, "pagoda_prefix_cache_hits_tokens_total")
        shared.append(shared_run(args.url, prompt, args.n, args.max_tokens, f"{tag}-s{r}"))
        hits += metric(args.url, "pagoda_prefix_cache_hits_tokens_total") - before
        separate.append(separate_run(args.url, prompt, args.n, args.max_tokens, f"{tag}-p{r}"))
    s, p = statistics.median(shared), statistics.median(separate)
    print(f"prompt {args.prompt_len} tokens, n {args.n}, max_tokens {args.max_tokens}, {args.runs} runs each")
    print(f"one request with n={args.n}: median {s:.3f} s (min {min(shared):.3f}, max {max(shared):.3f})")
    print(f"{args.n} separate requests:  median {p:.3f} s (min {min(separate):.3f}, max {max(separate):.3f})")
    print(f"ratio (separate / shared): {p / s:.2f}x")
    print(f"prefix-cache hit tokens per shared run: {hits / args.runs:.0f} "
          f"(the prompt is {args.prompt_len}; {args.n - 1} siblings could reuse at most "
          f"{(args.n - 1) * args.prompt_len})")


if __name__ == "__main__":
    main()
