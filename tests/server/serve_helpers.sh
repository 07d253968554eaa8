# Shell helpers for tests that run the real server: start_server PORT [ARGS],
# stop_server (SIGTERM, expects exit 0). Source this file.
start_server() {
  local port=$1; shift
  "$PAGODA" serve --port "$port" --set logging.level=warn "$@" >"$tmp/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start"; cat "$tmp/serve.log"; return 1
}
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid"
  local status=$?
  server_pid=
  [[ $status -eq 0 ]] || { echo "server exited with $status"; cat "$tmp/serve.log"; return 1; }
}
