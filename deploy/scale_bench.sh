#!/usr/bin/env bash
# Scale-out benchmark: the same multi-turn conversation workload on one
# pagoda server, then on REPLICAS replicas behind HAProxy
# (deploy/haproxy/haproxy.cfg) with affinity (X-Session-Id header), with
# affinity on the prompt alone (no header), with plain round robin, and with
# a uniformly random replica per request (what round robin amounts to when
# many independent clients interleave; one benchmark client's ordered stream
# lets round robin land a conversation's next turn on the same replica more
# often than chance). Every
# run starts on fresh replicas (empty prefix caches); each phase runs
# SCALE_REPEAT times with consecutive seeds and reports medians. Loopback
# processes, not containers; each replica runs one compute thread.
#
# Usage: deploy/scale_bench.sh PAGODA_BINARY
# Environment: SCALE_REPLICAS (3), SCALE_PORT_BASE (18760), SCALE_MODEL and
# SCALE_TOKENIZER (stories260K in models/), SCALE_KV_PAGES (2000 per
# replica; the single server gets REPLICAS x as many), SCALE_SEED (7, the
# first seed), SCALE_REPEAT (3), and the workload's shape:
# SCALE_CONVERSATIONS (100 open at once), SCALE_TURNS (2), SCALE_PREFIX_LEN
# (16: system prompt tokens, 4 shared ones), SCALE_FIRST_INPUT_LEN (288: the
# first user turn, a document), SCALE_INPUT_LEN (32 per later question),
# SCALE_OUTPUT_LEN (32), SCALE_CONCURRENCY (24), SCALE_ENDPOINT
# (/v1/chat/completions; the prompt-keyed phase then hashes the system
# prompt and first question).
# The default shape is a document follow-up: a long first message, then a
# question about it. Chats of many short turns gain less from affinity
# (round robin finds an earlier turn of the conversation on the same replica
# by chance); deploy/README.md has the numbers of both.
#
# Prints one line per run and the checks, and as its last line one JSON
# object: single_hit_rate, affinity_hit_rate, roundrobin_hit_rate,
# affinity_ttft_p50_ms, roundrobin_ttft_p50_ms, max_replica_load_ratio,
# failed (requests failed over all runs), plus affinity_prompt_hit_rate,
# random_hit_rate, random_ttft_p50_ms, single_ttft_p50_ms and the
# per-replica request counts. Hit rates are prompt
# tokens served from the prefix cache over prompt tokens looked up, summed
# over the replicas' /metrics. Exit status 1 when a check fails: affinity
# keeps >= 90% of the single server's hit rate and >= 2x round robin's (and
# a random replica's), no
# replica takes more than 1.5x the mean load, no request fails. Installs
# HAProxy when missing.
set -euo pipefail

BIN=$(realpath "${1:?usage: deploy/scale_bench.sh PAGODA_BINARY}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPLICAS=${SCALE_REPLICAS:-3}
BASE=${SCALE_PORT_BASE:-18760}
MODEL=${SCALE_MODEL:-$ROOT/models/stories260K.bin}
TOKENIZER=${SCALE_TOKENIZER:-$ROOT/models/tok512.bin}
CONVERSATIONS=${SCALE_CONVERSATIONS:-100}
TURNS=${SCALE_TURNS:-2}
CONCURRENCY=${SCALE_CONCURRENCY:-24}
SEED=${SCALE_SEED:-7}
REPEAT=${SCALE_REPEAT:-3}
ENDPOINT=${SCALE_ENDPOINT:-/v1/chat/completions}
KV_PAGES=${SCALE_KV_PAGES:-2000}
REPLICA_ARGS=(--set kv.page_size=16 --set kv.num_pages="$KV_PAGES")
WORK=$(mktemp -d /tmp/pagoda_scale.XXXXXX)
# shellcheck source=deploy/lib.sh
source "$ROOT/deploy/lib.sh"
trap 'cleanup_all; rm -rf "$WORK"' EXIT

ensure_haproxy
# Two rounds of every conversation: each slot's second conversation starts
# cold again, as new users arrive.
NUM_PROMPTS=$((CONVERSATIONS * TURNS * 2))
WORKLOAD=(--workload conversation --prompt-form words --prefix-len "${SCALE_PREFIX_LEN:-16}" --num-groups 4
  --first-input-len "${SCALE_FIRST_INPUT_LEN:-288}" --input-len "${SCALE_INPUT_LEN:-32}"
  --output-len "${SCALE_OUTPUT_LEN:-32}" --ignore-eos --turns "$TURNS" --num-conversations "$CONVERSATIONS"
  --num-prompts "$NUM_PROMPTS" --max-concurrency "$CONCURRENCY" --endpoint "$ENDPOINT" --no-progress)

# run_bench NAME SEED URL [BENCH FLAGS...]: the workload against URL; appends
# "NAME HIT_RATE TTFT_P50 FAILED LOADS..." to WORK/runs.txt, the hit rate from
# the replicas' /metrics, summed, and LOADS the requests each replica finished.
run_bench() {
  local name=$1 seed=$2 url=$3
  shift 3
  "$BIN" bench serve --url "$url" "${WORKLOAD[@]}" --seed "$seed" "$@" --result-file "$WORK/$name.json" \
    >"$WORK/$name.txt" 2>&1 || true
  local hits=0 queries=0 loads="" h q n
  for ((i = 1; i <= REPLICAS; i++)); do
    [[ -n ${REPLICA_PID[$i]:-} ]] || continue
    read -r h q n < <(replica_metrics "$i" pagoda_prefix_cache_hits_tokens_total \
      pagoda_prefix_cache_queries_tokens_total pagoda_requests_finished_total)
    hits=$((hits + h)) queries=$((queries + q)) loads="$loads $n"
  done
  if [[ ! -s $WORK/$name.json ]]; then
    say "$name: bench serve wrote no result:"
    cat "$WORK/$name.txt" >&2
    exit 1
  fi
  python3 - "$WORK/$name.json" "$name" "$seed" "$hits" "$queries" "$loads" >>"$WORK/runs.txt" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
name, seed, hits, queries, loads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
hit = hits / max(queries, 1)
print("%-16s seed %-3d hit rate %6.2f%%  TTFT p50 %7.2f ms  completed %d  failed %d  requests per replica:%s"
      % (name, seed, 100 * hit, r["median_ttft_ms"], r["completed"], r["failed"], loads), file=sys.stderr)
print(name, round(hit, 4), round(r["median_ttft_ms"], 2), r["failed"], loads)
EOF
}

# phase NAME MODE [BENCH FLAGS...]: REPEAT runs, each on fresh replicas and
# balancer. MODE single: one replica with the cluster's total KV, reached
# directly, the hit rate every replica could have at best.
phase() {
  local name=$1 mode=$2 k
  shift 2
  for ((k = 0; k < REPEAT; k++)); do
    if [[ $mode == single ]]; then
      start_replica 1 --set kv.num_pages=$((KV_PAGES * REPLICAS))
      run_bench "$name" $((SEED + k)) "http://127.0.0.1:$(replica_port 1)" "$@"
      stop_replica 1 KILL
    else
      start_replicas
      start_lb "$mode"
      run_bench "$name" $((SEED + k)) "http://127.0.0.1:$LB_PORT" "$@"
      stop_lb
      stop_replicas
    fi
  done
}

say "pagoda scale bench: $REPLICAS replicas, $CONVERSATIONS conversations x $TURNS turns x 2 rounds," \
  "concurrency $CONCURRENCY, $REPEAT runs of each phase (medians)"
say "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; $(haproxy -v | head -1)"
phase single single
phase affinity affinity --session-header X-Session-Id
phase affinity_prompt affinity
phase roundrobin roundrobin --session-header X-Session-Id
phase random random --session-header X-Session-Id

python3 - "$WORK/runs.txt" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, hit, ttft, failed, *loads = line.split()
    runs.setdefault(name, []).append((float(hit), float(ttft), int(failed), [int(x) for x in loads]))
med = lambda name, i: round(statistics.median(r[i] for r in runs[name]), 4)
single, aff, prompt, rr, rand = (med(n, 0) for n in ("single", "affinity", "affinity_prompt", "roundrobin", "random"))
failed = sum(r[2] for rs in runs.values() for r in rs)
# Load: the requests each replica finished, summed over the affinity runs.
loads = [sum(col) for col in zip(*(r[3] for r in runs["affinity"]))]
mean = sum(loads) / len(loads)
ratio = max(loads) / mean if mean else float("inf")
checks = [
    ("affinity keeps >= 90%% of one server's hit rate (%.1f%% of it)" % (100 * aff / single), aff >= 0.9 * single),
    ("affinity hit rate >= 2x round robin's (%.2fx)" % (aff / rr if rr else float("inf")), aff >= 2 * rr),
    ("affinity hit rate >= 2x a random replica's (%.2fx)" % (aff / rand if rand else float("inf")), aff >= 2 * rand),
    ("no replica over 1.5x the mean load with affinity (%.2fx)" % ratio, ratio <= 1.5),
    ("no request failed (%d did)" % failed, failed == 0),
]
for text, ok in checks:
    print(("PASS " if ok else "FAIL ") + text, file=sys.stderr)
print(json.dumps({
    "single_hit_rate": single, "affinity_hit_rate": aff, "roundrobin_hit_rate": rr,
    "affinity_ttft_p50_ms": med("affinity", 1), "roundrobin_ttft_p50_ms": med("roundrobin", 1),
    "max_replica_load_ratio": round(ratio, 3), "failed": failed,
    "affinity_prompt_hit_rate": prompt, "random_hit_rate": rand, "random_ttft_p50_ms": med("random", 1),
    "single_ttft_p50_ms": med("single", 1),
    "affinity_requests_per_replica": loads, "runs_per_phase": len(runs["affinity"]),
}))
sys.exit(0 if all(ok for _, ok in checks) else 1)
EOF
