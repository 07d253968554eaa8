# shellcheck shell=bash
# Shared by deploy/scale_bench.sh and deploy/failover_drill.sh: start and
# stop pagoda replicas and HAProxy as local processes, read the replicas'
# /metrics. Source it after setting BIN (the pagoda binary), BASE (first
# port), REPLICAS, MODEL, TOKENIZER and WORK (a scratch folder).

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LB_PORT=$((BASE + 20))
STATS_PORT=$((BASE + 21))
declare -A REPLICA_PID=()
LB_PID=""

say() { printf '%s\n' "$*" >&2; }

# The haproxy binary, installed from Debian when missing.
ensure_haproxy() {
  command -v haproxy >/dev/null 2>&1 && return 0
  say "haproxy not found: installing Debian's package"
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo -n"  # never wait for a password
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >&2
}

replica_port() { echo $((BASE + $1)); }

# Fails when something already listens on PORT (a server left over from an
# earlier run would otherwise answer in place of the one being started).
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    say "port $1 is already in use (a server left over from an earlier run?)"
    return 1
  fi
}

# start_replica I [FLAGS...]: replica I (1-based) on port BASE+I, one
# compute thread, named rI, REPLICA_ARGS then FLAGS (a later --set of a key
# wins), logging to WORK/replicaI.log; waits until that process (not a
# leftover of an earlier run on the port) answers /load as rI.
start_replica() {
  local i=$1 port deadline=$((SECONDS + 30))
  shift
  port=$(replica_port "$i")
  port_free "$port" || return 1
  "$BIN" serve --model "$MODEL" --tokenizer "$TOKENIZER" --host 127.0.0.1 --port "$port" --threads 1 \
    --set server.replica_id="r$i" --set server.shutdown_grace_s=20 --set logging.level=warn \
    --set server.max_connections_per_client=256 "${REPLICA_ARGS[@]}" "$@" >>"$WORK/replica$i.log" 2>&1 &
  REPLICA_PID[$i]=$!
  until curl -fsS "http://127.0.0.1:$port/load" 2>/dev/null | grep -q "\"replica\":\"r$i\".*\"status\":\"ok\""; do
    kill -0 "${REPLICA_PID[$i]}" 2>/dev/null || { say "replica $i exited:"; tail -5 "$WORK/replica$i.log" >&2; return 1; }
    ((SECONDS < deadline)) || { say "replica $i is not serving on port $port"; return 1; }
    sleep 0.1
  done
}

stop_replica() {  # I [SIGNAL]
  local i=$1 sig=${2:-TERM} pid=${REPLICA_PID[$1]:-}
  [[ -n $pid ]] || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  REPLICA_PID[$i]=""
}

start_replicas() {
  ((REPLICAS <= 8)) || { say "at most 8 replicas (haproxy.cfg has PAGODA_REPLICA_1..8)"; return 1; }
  for ((i = 1; i <= REPLICAS; i++)); do start_replica "$i"; done
}
stop_replicas() { for ((i = 1; i <= REPLICAS; i++)); do stop_replica "$i" KILL; done; }

# start_lb affinity|roundrobin|random: HAProxy with deploy/haproxy/haproxy.cfg, the
# replicas as PAGODA_REPLICA_1..N; waits until it reports every replica UP.
start_lb() {
  local mode=$1
  local -a env=("PAGODA_LB_BIND=127.0.0.1:$LB_PORT" "PAGODA_LB_STATS_BIND=127.0.0.1:$STATS_PORT")
  for ((i = 1; i <= REPLICAS; i++)); do env+=("PAGODA_REPLICA_$i=127.0.0.1:$(replica_port "$i")"); done
  [[ $mode == roundrobin ]] && env+=("PAGODA_LB_ROUND_ROBIN=1")
  [[ $mode == random ]] && env+=("PAGODA_LB_RANDOM=1")
  port_free "$LB_PORT" && port_free "$STATS_PORT" || return 1
  env "${env[@]}" haproxy -c -q -f "$HERE/haproxy/haproxy.cfg" >&2
  env "${env[@]}" haproxy -db -f "$HERE/haproxy/haproxy.cfg" >>"$WORK/haproxy.log" 2>&1 &
  LB_PID=$!
  wait_lb_up "$REPLICAS" 20
}

stop_lb() {
  [[ -n $LB_PID ]] || return 0
  kill "$LB_PID" 2>/dev/null || true
  wait "$LB_PID" 2>/dev/null || true
  LB_PID=""
}

# Replicas HAProxy's health checks have UP now.
lb_up_count() {
  curl -fsS "http://127.0.0.1:$STATS_PORT/stats;csv" 2>/dev/null |
    awk -F, '$1 == "pagoda" && $2 ~ /^replica/ && $18 ~ /^UP/ { n++ } END { print n + 0 }'
}

wait_lb_up() {  # COUNT SECONDS
  local deadline=$((SECONDS + $2))
  until [[ $(lb_up_count) -eq $1 ]]; do
    kill -0 "$LB_PID" 2>/dev/null || { say "HAProxy exited:"; tail -5 "$WORK/haproxy.log" >&2; return 1; }
    ((SECONDS < deadline)) || { say "HAProxy does not see $1 replicas UP"; return 1; }
    sleep 0.2
  done
}

# One scrape of replica I: for each NAME, the sum of its samples over all
# label sets, on one line, space-separated (0s if it is down).
replica_metrics() {  # I NAME...
  local port
  port=$(replica_port "$1")
  shift
  curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null | awk -v names="$*" '
    BEGIN { k = split(names, name, " ") }
    { for (j = 1; j <= k; j++) if ($1 == name[j] || index($1, name[j] "{") == 1) s[j] += $NF }
    END { for (j = 1; j <= k; j++) printf "%.0f%s", s[j] + 0, (j < k ? " " : "\n") }'
}

cleanup_all() {
  stop_lb
  for i in "${!REPLICA_PID[@]}"; do stop_replica "$i" KILL; done
}
