#!/usr/bin/env bash
# Starts `pagoda serve` with SERVER_FLAGS on a free loopback port, waits until
# it is healthy, runs `pagoda bench serve` against it with BENCH_FLAGS, and
# stops the server. Used for the serving results in BENCHMARKS.md.
#
# Usage: bench/serve_bench.sh PAGODA_BIN PORT "SERVER_FLAGS" BENCH_FLAGS...
# (PAGODA_SERVE_BIN, if set, is the binary that serves; PAGODA_BIN runs the bench.)
# Example:
#   bench/serve_bench.sh build/release/pagoda 18400 \
#     "--model /tmp/bench-200m.bin --tokenizer models/tokenizer.bin --set model.weight_dtype=bf16" \
#     --input-len 155 --output-len 128 --ignore-eos --max-concurrency 16 --num-prompts 32
set -euo pipefail
bin=${1:?usage: serve_bench.sh PAGODA_BIN PORT "SERVER_FLAGS" BENCH_FLAGS...}
port=${2:?port}
server_flags=${3:-}
shift 3
# shellcheck disable=SC2086
"${PAGODA_SERVE_BIN:-$bin}" serve --port "$port" --set logging.level=warn $server_flags &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "serve_bench: the server exited" >&2; exit 1; fi
  sleep 0.2
done
echo "# uptime before: $(uptime)"
"$bin" bench serve --url "http://127.0.0.1:$port" "$@"
echo "# uptime after: $(uptime)"
