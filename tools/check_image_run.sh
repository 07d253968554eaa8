#!/usr/bin/env bash
# The container's run recipe without a Docker engine: builds the runtime
# stage of docker/Dockerfile in a fresh Debian 12 root (debootstrap, then
# tools/packages.sh runtime inside it, exactly as the Dockerfile does), copies
# in a portable pagoda binary, the default config and the models, creates the
# same non-root user, and runs the Dockerfile's ENTRYPOINT + CMD (read from
# the Dockerfile) as that user in the root: `pagoda info`, the HEALTHCHECK
# command, one completion, SIGTERM -> exit 0. Downloads Debian packages, so it
# is a separate command (its result is recorded in docs/operations.md), not
# part of tools/test.sh. Run as root on Debian 12.
# Usage: tools/check_image_run.sh [PAGODA_BIN (default build/release/pagoda)] [ROOT_DIR] [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release/pagoda}
root=${2:-/tmp/pagoda-image-root}
port=${3:-18480}
df=docker/Dockerfile
[[ -x $bin ]] || { echo "no binary at $bin (run tools/setup.sh)"; exit 1; }
"$bin" info | grep -q "portable" || { echo "$bin is not a portable build"; exit 1; }
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
if [[ ! -x $root/usr/bin/apt-get ]]; then
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
fi
cleanup() {
  [[ -n "${server:-}" ]] && kill "$server" 2>/dev/null
  umount "$root/proc" "$root/sys" 2>/dev/null || true
}
trap cleanup EXIT
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The runtime stage, step by step.
mkdir -p "$root/opt/pagoda/tools" "$root/etc/pagoda" "$root/models"
cp tools/packages.txt tools/packages.sh "$root/opt/pagoda/tools/"
chroot "$root" /opt/pagoda/tools/packages.sh runtime
cp "$bin" "$root/usr/local/bin/pagoda"
cp config/default.yaml "$root/etc/pagoda/config.yaml"
cp models/stories260K.bin models/tok512.bin "$root/models/"
chroot "$root" id pagoda >/dev/null 2>&1 ||
  chroot "$root" useradd --system --uid 10001 --home-dir /var/lib/pagoda --create-home pagoda
# ENTRYPOINT + CMD as the container would run them (plus a test port).
# The ENV lines as env(1) arguments, then ENTRYPOINT + CMD; the port is the
# test's, set the way a user would (-e PAGODA_SERVER_PORT).
mapfile -t cmd < <(python3 - "$df" "$port" <<'PY'
import json, shlex, sys
entry, cmd, env = [], [], []
for line in open(sys.argv[1]).read().replace("\\\n", " ").splitlines():
    if line.startswith("ENTRYPOINT "):
        entry = json.loads(line[len("ENTRYPOINT "):])
    elif line.startswith("CMD "):
        cmd = json.loads(line[len("CMD "):])
    elif line.startswith("ENV "):
        env += [w for w in shlex.split(line[len("ENV "):]) if "=" in w]
env = [e for e in env if not e.startswith("PAGODA_SERVER_PORT=")] + ["PAGODA_SERVER_PORT=" + sys.argv[2]]
print("\n".join(["env"] + env + entry + cmd))
PY
)
echo "run: ${cmd[*]} (as uid 10001 in $root)"
fails=0
info=$(chroot --userspec=10001:10001 "$root" /usr/local/bin/pagoda info)
echo "$info" | sed 's/^/  /'
chroot --userspec=10001:10001 "$root" "${cmd[0]}" HOME=/var/lib/pagoda "${cmd[@]:1}" >/tmp/pagoda-image-run.log 2>&1 &
server=$!
ok=0
for _ in $(seq 1 300); do
  # The Dockerfile's HEALTHCHECK command, run inside the root.
  if chroot "$root" curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then ok=1; break; fi
  kill -0 "$server" 2>/dev/null || break
  sleep 0.2
done
if [[ $ok -eq 1 ]]; then echo "ok   HEALTHCHECK passes"; else echo "FAIL healthcheck"; cat /tmp/pagoda-image-run.log; fails=$((fails+1)); fi
out=$(chroot "$root" curl -fsS "http://127.0.0.1:$port/v1/completions" -H 'content-type: application/json' \
  -d '{"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0}' || true)
if [[ $out == *'"text"'* ]]; then echo "ok   a completion"; else echo "FAIL completion: $out"; fails=$((fails+1)); fi
kill -TERM "$server"; status=0; wait "$server" || status=$?; server=
if [[ $status -eq 0 ]]; then echo "ok   SIGTERM (the STOPSIGNAL) exits 0"; else echo "FAIL exit $status after SIGTERM"; fails=$((fails+1)); fi
grep -q "kernels " /tmp/pagoda-image-run.log && grep "kernels " /tmp/pagoda-image-run.log | sed 's/^/  /'
echo "image run check: $fails failed"
exit $((fails > 0))
