#!/usr/bin/env bash
# Structured outputs through real npm clients against a live pagoda: the official
# `openai` package (helpers/zod) and LangChain.js, installed from the npm registry
# into the build tree (once), then structured_test.mjs.
# Usage: structured_client_test.sh PAGODA_BIN WORK_DIR
set -euo pipefail
PAGODA=$1
work=$2/structured_node
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
server_pid=
trap 'rm -rf "$tmp"; [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true' EXIT
# shellcheck source=tests/server/serve_helpers.sh
source "$here/serve_helpers.sh"
mkdir -p "$work"
cp "$here/structured_node/package.json" "$here/structured_node/structured_test.mjs" "$work/"
# Reinstall when package.json changes (its pins), not on every run.
stamp=$work/node_modules/.pagoda-package.json
if ! cmp -s "$work/package.json" "$stamp"; then
  (cd "$work" && npm install --no-audit --no-fund --loglevel=error)
  cp "$work/package.json" "$stamp"
fi
start_server 18652
PAGODA_URL=http://127.0.0.1:18652 node "$work/structured_test.mjs"
stop_server
