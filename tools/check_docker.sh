#!/usr/bin/env bash
# Static checks of docker/ (no Docker engine runs on our machines): every
# path the Dockerfile COPYs exists, it installs packages only through
# tools/packages.sh (the one package list), and the pagoda services of
# compose.yaml and compose.scale.yaml wait out the drain and check /health.
set -euo pipefail
cd "$(dirname "$0")/.."
fails=0
df=docker/Dockerfile
[[ -f $df ]] || { echo "FAIL missing $df"; exit 1; }
while read -r src; do
  [[ -e "$src" ]] || { echo "FAIL Dockerfile copies '$src', which does not exist"; fails=$((fails+1)); }
done < <(grep -E '^COPY ' "$df" | grep -v -- '--from=' | awk '{for (i=2;i<NF;i++) print $i}')
if grep -E 'apt-get install' "$df" >/dev/null; then
  echo "FAIL $df calls apt-get install directly; use tools/packages.sh"; fails=$((fails+1))
fi
grep -q 'tools/packages.sh runtime' "$df" || { echo "FAIL runtime stage must use tools/packages.sh runtime"; fails=$((fails+1)); }
grep -q 'tools/setup.sh' "$df" || { echo "FAIL build stage must use tools/setup.sh"; fails=$((fails+1)); }
grep -A3 '^HEALTHCHECK' "$df" | grep -q '/health' || { echo "FAIL no HEALTHCHECK on /health"; fails=$((fails+1)); }
grep -q '^USER ' "$df" || { echo "FAIL image must run as a non-root USER"; fails=$((fails+1)); }
grep -q '^STOPSIGNAL SIGTERM' "$df" || { echo "FAIL no STOPSIGNAL SIGTERM (the drain signal)"; fails=$((fails+1)); }
grep -q '^VOLUME .*/models' "$df" || { echo "FAIL models are not a VOLUME"; fails=$((fails+1)); }
grep -v '^#' "$df" | grep -q 'PAGODA_NATIVE=ON\|march=native' && { echo "FAIL the image must be the portable build"; fails=$((fails+1)); }
for ignored in .git build models; do
  grep -qx "$ignored" .dockerignore 2>/dev/null || { echo "FAIL .dockerignore does not keep '$ignored' out of the build context"; fails=$((fails+1)); }
done
grep -A1 '^HEALTHCHECK' "$df" | grep -q 'PAGODA_SERVER_PORT' || { echo "FAIL the HEALTHCHECK does not follow PAGODA_SERVER_PORT"; fails=$((fails+1)); }
grep -E '^CMD ' "$df" | grep -q -- '--port\|--host\|--model' && { echo "FAIL CMD sets keys by flags, which would beat the environment"; fails=$((fails+1)); }
python3 - <<'PY' || fails=$((fails+1))
import re, sys
try:
    import yaml
except ImportError:
    print("skip compose.yaml parse: python3-yaml missing"); sys.exit(0)
d = yaml.safe_load(open("docker/compose.yaml"))
assert "services" in d and d["services"], "compose.yaml has no services"
# The pagoda services of both compose files (compose.scale.yaml's others are
# the balancer and Prometheus: tools/check_deploy.sh checks those).
scale = yaml.safe_load(open("docker/compose.scale.yaml"))["services"]
pagoda = dict(d["services"], **{"compose.scale.yaml " + n: s for n, s in scale.items()
                                if s.get("image") == "pagoda:latest"})
assert len(pagoda) > len(d["services"]), "compose.scale.yaml has no pagoda:latest service"
for name, svc in pagoda.items():
    env = svc.get("environment", {})
    grace = float(env.get("PAGODA_SERVER_SHUTDOWN_GRACE_S", 30))
    stop = svc.get("stop_grace_period", "10s")
    m = re.fullmatch(r"(\d+)(s|m)", str(stop))
    assert m, f"{name}: stop_grace_period '{stop}' is not NNs or NNm"
    stop_s = int(m.group(1)) * (60 if m.group(2) == "m" else 1)
    assert stop_s > grace, f"{name}: stop_grace_period {stop_s}s is not longer than server.shutdown_grace_s {grace}s"
    test = " ".join(svc.get("healthcheck", {}).get("test", []))
    assert "/health" in test and "PAGODA_SERVER_PORT" in test, f"{name}: healthcheck must call /health on PAGODA_SERVER_PORT"
print("ok   compose files parse:", ", ".join(pagoda), "(grace periods and healthchecks agree)")
PY
echo "docker static check: $fails failed"
[[ $fails -eq 0 ]]
