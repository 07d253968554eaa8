#!/usr/bin/env bash
# Real npm clients against a live pagoda: copies tests/server/NODE_DIR (its
# package.json pins the clients, SCRIPT drives them) into the build tree,
# installs from the npm registry when package.json changed, starts the server
# on PORT and runs the script.
# Usage: npm_client_test.sh PAGODA_BIN WORK_DIR NODE_DIR PORT SCRIPT
set -euo pipefail
PAGODA=$1
node_dir=$3
port=$4
script=$5
work=$2/$node_dir
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
server_pid=
trap 'rm -rf "$tmp"; [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true' EXIT
# shellcheck source=tests/server/serve_helpers.sh
source "$here/serve_helpers.sh"
mkdir -p "$work"
cp "$here/$node_dir/package.json" "$here/$node_dir/$script" "$work/"
# Reinstall when package.json changes (its pins), not on every run.
stamp=$work/node_modules/.pagoda-package.json
if ! cmp -s "$work/package.json" "$stamp"; then
  (cd "$work" && npm install --no-audit --no-fund --loglevel=error)
  cp "$work/package.json" "$stamp"
fi
start_server "$port"
PAGODA_URL=http://127.0.0.1:$port node "$work/$script"
stop_server
