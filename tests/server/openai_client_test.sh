#!/usr/bin/env bash
# The official `openai` npm package drives a live pagoda: installs it from the
# npm registry into the build tree (once), then runs client_test.mjs.
# Usage: openai_client_test.sh PAGODA_BIN WORK_DIR
set -euo pipefail
PAGODA=$1
work=$2/openai_node
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
server_pid=
trap 'rm -rf "$tmp"; [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true' EXIT
source "$here/serve_helpers.sh"
mkdir -p "$work"
cp "$here/openai_node/package.json" "$here/openai_node/client_test.mjs" "$work/"
if [[ ! -f "$work/node_modules/openai/package.json" ]]; then
  (cd "$work" && npm install --no-audit --no-fund --loglevel=error)
fi
start_server 18631
PAGODA_URL=http://127.0.0.1:18631 node "$work/client_test.mjs"
stop_server
