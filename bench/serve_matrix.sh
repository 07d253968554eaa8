#!/usr/bin/env bash
# The serving matrix recorded in BENCHMARKS.md ("Serving"), every point the
# median of REPEAT interleaved passes (pagoda bench serve --repeat), after a
# warm-up. Starts one server per configuration through bench/serve_bench.sh.
#
# Usage: bench/serve_matrix.sh PAGODA_BIN MODEL TOKENIZER OUT_DIR [REPEAT] [PARTS]
#   PARTS: any of weights,kv,prefix,pages (default: all)
# Example (bench-200m from `pagoda make-model --preset bench-200m`):
#   bench/serve_matrix.sh build/release/pagoda /tmp/bench-200m.bin models/tokenizer.bin /tmp/matrix 3
# Durations: long enough that the first wave (every client starting at once)
# is a minority of the requests (a 15-s pass at f32 and concurrency 16 was
# one wave: 140 tok/s against 170 in steady state).
# Each configuration writes OUT_DIR/NAME.json (medians plus each run's
# throughput and TTFT/TPOT medians) and OUT_DIR/NAME.txt (the tables).
set -euo pipefail
bin=${1:?usage: serve_matrix.sh PAGODA_BIN MODEL TOKENIZER OUT_DIR [REPEAT] [PARTS]}
model=${2:?model}
tok=${3:?tokenizer}
out=${4:?out dir}
rep=${5:-3}
parts=${6:-weights,kv,prefix,pages}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
M="--model $model --tokenizer $tok"
# The issue-9 workload: 155 prompt tokens, 128 output tokens, greedy, closed loop.
BASE=(--input-len 155 --output-len 128 --ignore-eos --temperature 0 --repeat "$rep" --warmup-requests 4 --no-progress)

run() {  # NAME "SERVER FLAGS" BENCH FLAGS...
  local name=$1 flags=$2
  shift 2
  echo "== $name ($(date -u +%H:%M:%S), $(cut -d' ' -f1-3 /proc/loadavg))"
  "$here/serve_bench.sh" "$bin" 18410 "$M $flags" "$@" --result-file "$out/$name.json" | tee "$out/$name.txt" |
    grep -A8 -E "max-concurrency +ok" || true
}

if [[ $parts == *weights* ]]; then
  for w in f32 bf16 int8; do
    run "weights_$w" "--set model.weight_dtype=$w" "${BASE[@]}" --sweep max-concurrency=1,4,16,64 --duration 40
  done
fi
if [[ $parts == *kv* ]]; then
  for k in bf16 f16 int8 int4; do
    run "kv_$k" "--set model.weight_dtype=int8 --set kv.dtype=$k" "${BASE[@]}" --sweep max-concurrency=16,64 --duration 30
  done
fi
if [[ $parts == *prefix* ]]; then
  for p in true false; do
    run "prefix_$p" "--set model.weight_dtype=int8 --set kv.prefix_caching=$p" --workload shared-prefix \
      --prefix-len 300 --num-groups 4 --input-len 40 --output-len 64 --ignore-eos --temperature 0 \
      --max-concurrency 8 --num-prompts 32 --repeat "$rep" --warmup-requests 2 --no-progress
  done
fi
if [[ $parts == *pages* ]]; then
  for p in 8 16 32 64 128; do
    run "page_$p" "--set model.weight_dtype=int8 --set kv.page_size=$p" --input-len 155 --output-len 32 --ignore-eos \
      --temperature 0 --max-concurrency 16 --num-prompts 32 --repeat "$rep" --warmup-requests 4 --no-progress
  done
fi
