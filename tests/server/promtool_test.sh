#!/usr/bin/env bash
# /metrics passes `promtool check metrics` (Debian's prometheus), after real
# traffic so histograms and counters have values.
set -euo pipefail
PAGODA=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
server_pid=
trap 'rm -rf "$tmp"; [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true' EXIT
source "$here/serve_helpers.sh"
start_server 18632
curl -sf http://127.0.0.1:18632/v1/completions -H 'content-type: application/json' \
  -d '{"prompt": "Once upon a time", "max_tokens": 16}' >/dev/null
curl -sf http://127.0.0.1:18632/metrics > "$tmp/metrics.txt"
promtool check metrics < "$tmp/metrics.txt"
grep -q '^pagoda_generation_tokens_total 16' "$tmp/metrics.txt"
stop_server
echo "promtool: ok"
