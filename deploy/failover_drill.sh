#!/usr/bin/env bash
# Failure drills for replicas behind HAProxy (deploy/haproxy/haproxy.cfg):
# while the conversation workload runs through the balancer, SIGKILL one
# replica, restart it, then SIGTERM another. Loopback processes.
#
# Usage: deploy/failover_drill.sh PAGODA_BINARY
# Environment: DRILL_PORT_BASE (18800), DRILL_SECONDS (24: the workload's
# length; kill at 1/6, restart at 2/5, SIGTERM at 2/3 of it).
#
# Checks, each a PASS/FAIL line; exit status 1 when one fails:
#  - no failed request beyond the streams that were running on the killed
#    replica (HAProxy logs those with termination state SD: the server went
#    away mid-response; requests it had not begun answering were retried);
#  - while the killed replica is down, every probe session is answered, and
#    those of the other replicas stay where they were (only its keys move);
#  - the SIGTERM'd replica drains: no request fails after the signal, and it
#    exits 0 within server.shutdown_grace_s (20 s here);
#  - the restarted replica gets its keys back (every probe session maps to
#    the replica it had before the drill) and serves prefix-cache hits again.
# The last output line is one JSON object with the counts.
set -euo pipefail

BIN=$(realpath "${1:?usage: deploy/failover_drill.sh PAGODA_BINARY}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPLICAS=3
BASE=${DRILL_PORT_BASE:-18800}
MODEL=${DRILL_MODEL:-$ROOT/models/stories260K.bin}
TOKENIZER=${DRILL_TOKENIZER:-$ROOT/models/tok512.bin}
SECONDS_TOTAL=${DRILL_SECONDS:-24}
REPLICA_ARGS=(--set kv.page_size=16)
WORK=$(mktemp -d /tmp/pagoda_drill.XXXXXX)
# shellcheck source=deploy/lib.sh
source "$ROOT/deploy/lib.sh"
bench_pid=""
# (Each step of the trap must not fail: under set -e a failing one would end
# it before the replicas are stopped.)
trap 'if [[ -n $bench_pid ]]; then kill "$bench_pid" 2>/dev/null || true; fi; cleanup_all; rm -rf "$WORK"' EXIT
ensure_haproxy

# The replica (rN) that answers each of 30 probe sessions, one per line.
probe_map() {
  for s in $(seq 1 30); do
    curl -sS -D - -o /dev/null "http://127.0.0.1:$LB_PORT/v1/completions" -H "X-Session-Id: probe-$s" \
      -d '{"prompt":"Once upon a time","max_tokens":1}' | tr -d '\r' |
      awk -v s="$s" 'tolower($1) == "x-pagoda-replica:" { print s, $2 }'
  done
}

say "pagoda failover drill: $REPLICAS replicas, ${SECONDS_TOTAL}s of conversations through HAProxy"
say "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; $(haproxy -v | head -1)"
start_replicas
start_lb affinity
probe_map >"$WORK/map_before"
KILLED=2 DRAINED=3
killed_keys=$(awk -v r="r$KILLED" '$2 == r' "$WORK/map_before" | wc -l)

"$BIN" bench serve --url "http://127.0.0.1:$LB_PORT" --workload conversation --prompt-form words \
  --prefix-len 16 --num-groups 4 --input-len 48 --output-len 32 --ignore-eos --turns 4 --num-conversations 50 \
  --max-concurrency 12 --duration "$SECONDS_TOTAL" --session-header X-Session-Id --seed 11 --no-progress \
  --save-requests --result-file "$WORK/drill.json" >"$WORK/drill.txt" 2>&1 &
bench_pid=$!
t0=$SECONDS
at() { while ((SECONDS - t0 < $1)); do sleep 0.1; done; }

at $((SECONDS_TOTAL / 6))
say "t=$((SECONDS - t0))s SIGKILL r$KILLED"
stop_replica "$KILLED" KILL
kill_s=$((SECONDS - t0))
wait_lb_up $((REPLICAS - 1)) 10
probe_map >"$WORK/map_down"
answered_while_down=$(wc -l <"$WORK/map_down")
# Sessions of the live replicas that moved (bounded loads may move one under load).
others_moved=$(awk -v r="r$KILLED" 'NR == FNR { was[$1] = $2; next } was[$1] != r && was[$1] != $2' \
  "$WORK/map_before" "$WORK/map_down" | wc -l)

at $((SECONDS_TOTAL * 2 / 5))
say "t=$((SECONDS - t0))s restart r$KILLED"
start_replica "$KILLED"
wait_lb_up "$REPLICAS" 15

at $((SECONDS_TOTAL * 2 / 3))
say "t=$((SECONDS - t0))s SIGTERM r$DRAINED (drain)"
term_at=$(date +%s.%N)
kill -TERM "${REPLICA_PID[$DRAINED]}"
drain_status=0
wait "${REPLICA_PID[$DRAINED]}" || drain_status=$?
drain_s=$(python3 -c "import time; print(round(time.time() - $term_at, 2))")
REPLICA_PID[$DRAINED]=""
say "t=$((SECONDS - t0))s r$DRAINED exited with status $drain_status after ${drain_s}s"
wait "$bench_pid" || true

# Back to full strength: do the keys come home?
start_replica "$DRAINED"
wait_lb_up "$REPLICAS" 15
probe_map >"$WORK/map_after"
moved_back=$(diff -q "$WORK/map_before" "$WORK/map_after" >/dev/null && echo true || echo false)
restarted_hits=$(replica_metrics "$KILLED" pagoda_prefix_cache_hits_tokens_total)

# Streams the killed replica was sending when it died: HAProxy's termination
# state "SD" on that server.
cut_streams=$(grep -c "pagoda/replica$KILLED .* SD" "$WORK/haproxy.log" || true)
python3 - "$WORK/drill.json" "$cut_streams" "$kill_s" "$answered_while_down" "$killed_keys" "$drain_status" \
  "$drain_s" "$moved_back" "$restarted_hits" "$others_moved" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
cut, kill_s, answered, killed_keys = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
others_moved = int(sys.argv[10])
drain_status, drain_s, moved_back, restarted_hits = int(sys.argv[6]), float(sys.argv[7]), sys.argv[8] == "true", int(sys.argv[9])
failed, completed = r["failed"], r["completed"]
reqs = r.get("requests", [])
# Failures that started after the kill's aftermath (2 s) would be the drain's
# or the restart's: there must be none.
late = [q for q in reqs if not q.get("ok") and q["start_s"] > kill_s + 2]
checks = [
    ("failed requests (%d) are only the streams cut on the killed replica (%d)" % (failed, cut), failed <= cut),
    ("while r2 is down all 30 probe sessions are answered (%d were)" % answered, answered == 30),
    ("while r2 is down only its %d sessions moved (%d others did)" % (killed_keys, others_moved), others_moved <= 1),
    ("no request failed after the kill's aftermath, drain and restart included (%d did)" % len(late), not late),
    ("the drained replica exited 0 within its 20 s grace (status %d, %.1f s)" % (drain_status, drain_s),
     drain_status == 0 and drain_s < 20),
    ("every probe session maps back to its replica after the restart", moved_back),
    ("the restarted replica serves prefix-cache hits again (%d tokens)" % restarted_hits, restarted_hits > 0),
]
for text, ok in checks:
    print(("PASS " if ok else "FAIL ") + text, file=sys.stderr)
print(json.dumps({"completed": completed, "failed": failed, "streams_cut_on_killed_replica": cut,
                  "failed_beyond_killed": max(0, failed - cut), "failed_after_kill_aftermath": len(late),
                  "probe_sessions_of_killed_replica": killed_keys, "probes_answered_while_down": answered,
                  "other_sessions_moved_while_down": others_moved,
                  "drained_exit_status": drain_status, "drain_seconds": drain_s,
                  "keys_moved_back": moved_back, "restarted_replica_hit_tokens": restarted_hits}))
sys.exit(0 if all(ok for _, ok in checks) else 1)
EOF
