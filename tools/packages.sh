#!/usr/bin/env bash
# Installs the Debian packages of one kind from tools/packages.txt, only those
# missing (idempotent). Usage: tools/packages.sh build|runtime
set -euo pipefail
kind=${1:?usage: packages.sh build|runtime}
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t wanted < <(sed -n "s/^${kind}: *//p" "$here/packages.txt")
missing=()
for line in "${wanted[@]}"; do
  read -r p unless <<<"$line"
  if [[ -n "${unless:-}" ]] && command -v "${unless#\?}" >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "packages ($kind): all ${#wanted[@]} installed"
  exit 0
fi
echo "packages ($kind): installing ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
