#!/usr/bin/env bash
# Static checks of the scale-out files (deploy/ and docker/compose.scale.yaml):
# HAProxy accepts deploy/haproxy/haproxy.cfg in each of its modes (static
# replicas with affinity, DNS-discovered replicas, round robin, random),
# promtool accepts deploy/prometheus/prometheus.yml, and the compose file
# wires them together: the balancer finds the pagoda service by DNS on the
# port the replicas listen on, mounts the files checked here, and the
# replicas accept its connections (their drain and healthcheck are
# tools/check_docker.sh's). The balancer's behaviour itself is
# tested by deploy/failover_drill.sh (ctest deploy.failover_drill).
set -euo pipefail
cd "$(dirname "$0")/.."
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
for tool in haproxy promtool; do
  command -v "$tool" >/dev/null || { echo "FAIL $tool is not installed (tools/packages.txt lists it)"; exit 1; }
done
cfg=deploy/haproxy/haproxy.cfg
static=(PAGODA_REPLICA_1=127.0.0.1:8001 PAGODA_REPLICA_2=127.0.0.1:8002 PAGODA_REPLICA_3=127.0.0.1:8003)
for mode in "affinity:${static[*]}" "dns:PAGODA_REPLICAS_DNS=pagoda:8000" \
  "roundrobin:${static[*]} PAGODA_LB_ROUND_ROBIN=1" "random:${static[*]} PAGODA_LB_RANDOM=1"; do
  name=${mode%%:*}
  # shellcheck disable=SC2086
  out=$(env ${mode#*:} haproxy -c -f "$cfg" 2>&1) || fail "haproxy rejects $cfg in $name mode: $out"
  grep -q WARNING <<<"$out" && fail "haproxy warns about $cfg in $name mode: $out"
done
# The balancing the file promises, and retries only before a response starts.
grep -q '^  hash-type consistent' "$cfg" || fail "$cfg: no consistent hashing"
grep -q '^  hash-balance-factor' "$cfg" || fail "$cfg: no bounded loads (hash-balance-factor)"
grep -q 'http-check send meth GET uri /health' "$cfg" || fail "$cfg: no health check on /health"
grep -q '^  retry-on conn-failure empty-response 503$' "$cfg" || fail "$cfg: retry-on is not 'conn-failure empty-response 503'"
out=$(promtool check config deploy/prometheus/prometheus.yml 2>&1) || fail "promtool: $out"
python3 - <<'PY' || fails=$((fails + 1))
import re, sys, yaml
d = yaml.safe_load(open("docker/compose.scale.yaml"))
s = d["services"]
errors = []
for name in ("pagoda", "haproxy", "prometheus"):
    if name not in s:
        errors.append("compose.scale.yaml has no service '%s'" % name)
if not errors:
    env = s["pagoda"]["environment"]
    port = env.get("PAGODA_SERVER_PORT", "8000")
    lb = s["haproxy"]["environment"]
    if lb.get("PAGODA_REPLICAS_DNS") != "pagoda:%s" % port:
        errors.append("the balancer's PAGODA_REPLICAS_DNS is %r, not 'pagoda:%s'" % (lb.get("PAGODA_REPLICAS_DNS"), port))
    replicas = s["pagoda"].get("deploy", {}).get("replicas", 1)
    if not 2 <= replicas <= 8:
        errors.append("pagoda has %s replicas; the balancer's server-template has 8 slots" % replicas)
    per_client = int(env.get("PAGODA_SERVER_MAX_CONNECTIONS_PER_CLIENT", 64))
    cfg = open("deploy/haproxy/haproxy.cfg").read()
    maxconn = int(re.search(r"default-server .*\bmaxconn (\d+)", cfg).group(1))
    pool = int(re.search(r"default-server .*\bpool-max-conn (\d+)", cfg).group(1))
    if per_client <= maxconn + pool:
        errors.append("replicas allow %d connections per client, the balancer may open %d + %d idle + checks"
                      % (per_client, maxconn, pool))
    if "ports" in s["pagoda"]:
        errors.append("replicas publish ports: clients would bypass the balancer")
    mounts = " ".join(s["haproxy"].get("volumes", []) + s["prometheus"].get("volumes", []))
    for f in ("deploy/haproxy/haproxy.cfg", "deploy/prometheus/prometheus.yml"):
        if f not in mounts:
            errors.append("compose.scale.yaml does not mount %s" % f)
for e in errors:
    print("FAIL " + e)
sys.exit(1 if errors else 0)
PY
if ((fails)); then
  echo "check_deploy: $fails failure(s)"
  exit 1
fi
echo "check_deploy: haproxy.cfg in 4 modes, prometheus.yml and compose.scale.yaml are consistent"
