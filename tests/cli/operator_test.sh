#!/usr/bin/env bash
# What an operator meets first (issue 32): vLLM/llama.cpp-style flags and a
# positional model, `pagoda help`, "did you mean" for commands and flags,
# --version, config-relative paths, `warning` as a level, kv-plan refusing
# what serve refuses, the start-up summary (text and json), "address in use"
# before the model loads, and `pagoda bench serve` exit codes and error
# summaries. Ports 18481-18486.
set -u
PAGODA=${1:?usage: operator_test.sh PATH_TO_PAGODA}
fails=0
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

# shellcheck source=tests/cli/expect.sh
source "$(dirname "$0")/expect.sh"

wait_healthy() {  # wait_healthy PORT PID
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- commands, flags, help, version ---
expect "pagoda help lists the commands" 0 "kv-plan" -- "$PAGODA" help
expect "pagoda help serve shows serve's flags" 0 "--max-model-len" -- "$PAGODA" help serve
expect "a mistyped command gets a suggestion" 2 "unknown command 'srve' (did you mean 'serve'?)" -- "$PAGODA" srve
expect "a mistyped flag gets a suggestion" 2 "unknown flag '--prot' for pagoda serve (did you mean '--port'?)" -- "$PAGODA" serve --prot 9000
expect "help of a mistyped command" 2 "did you mean 'serve'" -- "$PAGODA" help serv
expect "--version names the build and the CPU" 0 "cpu: " -- "$PAGODA" --version
out=$("$PAGODA" --version); [[ "$out" == *"build: "*"kernel levels this CPU supports: "* ]]; check "--version shows build and kernel levels" $? "$out"

# --- flags as spellings of config keys (checked through config check) ---
out=$("$PAGODA" config check --no-path-check --max-model-len 256 --served-model-name m --dtype int8 \
  --kv-cache-dtype bf16 --max-num-seqs 8 --block-size 32 --api-key k1 --api-key k2 --port 9001 2>&1)
[[ "$out" == *"weight_dtype: int8"*"max_model_len: 256"*"name: m"*"page_size: 32"*"dtype: bf16"*"max_num_seqs: 8"*"port: 9001"*"api_keys: ["*"***"*"***"* ]]
check "--max-model-len and friends set their keys" $? "$out"
expect "a bad value names the flag typed" 2 "--kv-cache-dtype: config key 'kv.dtype': got 'fp8'" -- "$PAGODA" serve --kv-cache-dtype fp8
expect "vLLM's dtype names are accepted" 0 "kernel level chosen" -- "$PAGODA" info --dtype bfloat16 --kv-cache-dtype float16
expect "the model given twice is refused" 2 "given twice" -- "$PAGODA" serve models/stories260K.bin --model models/stories260K.bin
expect "MODEL alone takes the tokenizer beside it" 0 'tokenizer: ""' -- "$PAGODA" config check --no-path-check --model /some/hf-dir
expect "a flag value that is not UTF-8 is refused" 2 "not valid UTF-8" -- "$PAGODA" serve $'caf\xe9.bin'
expect "--api-key does not swallow MODEL" 2 "does not exist" -- timeout 60 "$PAGODA" serve --api-key k /nonexistent/model.bin --port 18485
expect "logging.level warning is warn" 0 "kernel level chosen" -- "$PAGODA" info --set logging.level=warning

# --- relative paths in a config file are relative to the file ---
mkdir -p "$tmp/conf/m"
cp models/stories260K.bin models/tok512.bin "$tmp/conf/m/"
printf 'model:\n  path: m/stories260K.bin\n  tokenizer: m/tok512.bin\n' > "$tmp/conf/pagoda.yaml"
expect "config-relative model paths resolve from another directory" 0 "path: $tmp/conf/m/stories260K.bin" -- \
  bash -c "cd / && '$(realpath "$PAGODA")' config check '$tmp/conf/pagoda.yaml'"

# --- kv-plan agrees with serve ---
expect "kv-plan refuses page size 12 as serve does" 2 "--page-size: config key 'kv.page_size': got '12'" -- \
  "$PAGODA" kv-plan --layers 2 --kv-heads 2 --head-dim 64 --page-size 12
expect "serve refuses page size 12" 2 "'kv.page_size': got '12'" -- "$PAGODA" serve --block-size 12
expect "kv-plan names the shape flag" 2 "--kv-heads: got 0" -- "$PAGODA" kv-plan --layers 2 --head-dim 64
expect "kv-plan of the default model" 0 "sequences_at_max_model_len: " -- "$PAGODA" kv-plan
printf 'kv:\n  memory_gib: 2\n' > "$tmp/mem.yaml"
expect "a later kv.num_pages replaces the file's memory_gib" 0 "num_pages: 64" -- "$PAGODA" kv-plan --config "$tmp/mem.yaml" --set kv.num_pages=64
expect "... and kv-plan says so" 0 "kv.num_pages=64 replaces the earlier kv.memory_gib=2" -- "$PAGODA" kv-plan --config "$tmp/mem.yaml" --num-pages 64
expect "a KV pool smaller than one sequence is refused by kv-plan" 2 "less than one sequence" -- "$PAGODA" kv-plan --num-pages 4

# --- start-up summary, text and json; address in use before the model loads ---
"$PAGODA" serve models/stories260K.bin --tokenizer models/tok512.bin --port 18481 >"$tmp/text.log" 2>&1 &
pids+=($!)
wait_healthy 18481 "${pids[-1]}"; check "serve MODEL (positional) starts" $? "$(tail -5 "$tmp/text.log")"
curl -s http://127.0.0.1:18481/v1/completions -d '{"prompt": "Once upon a time", "max_tokens": 4}' >/dev/null
for line in "pagoda .* build) on .*: kernels " "model 'stories260K' from .*parameters" "KV cache: .* tokens in flight" \
            "engine: .* compute threads" "listening on http://127.0.0.1:18481"; do
  grep -q "$line" "$tmp/text.log"; check "start-up line: $line" $? "$(head -8 "$tmp/text.log")"
done
! grep -q "effective config" "$tmp/text.log"; check "no config dump at info" $? "$(head -12 "$tmp/text.log")"
expect "a taken port is reported before the model loads" 1 "cannot listen on 127.0.0.1:18481" -- \
  timeout 20 "$PAGODA" serve --port 18481 --set model.path=/dev/null --set model.format=llama2c --tokenizer models/tok512.bin
kill -TERM "${pids[-1]}"; wait "${pids[-1]}"

"$PAGODA" serve --port 18482 --set logging.format=json --set logging.level=debug --set scheduler.queue_timeout_s=0.05 \
  >"$tmp/json.log" 2>&1 &
pids+=($!)
wait_healthy 18482 "${pids[-1]}"; check "serve with json logs starts" $? "$(tail -5 "$tmp/json.log")"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}"
python3 - "$tmp/json.log" <<'PY'; check "json start-up records: fields, no YAML in msg, no 17-digit numbers" $? "$(head -c 1500 "$tmp/json.log")"
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by_msg = {r["msg"]: r for r in records}
for msg, keys in {"start": ["version", "cpu", "kernels"], "model": ["parameters", "weight_dtype", "max_model_len"],
                  "kv_cache": ["pages", "tokens_in_flight", "reserved_bytes"], "engine": ["max_num_seqs"],
                  "listening": ["port"]}.items():
    assert msg in by_msg, f"no '{msg}' record"
    for k in keys: assert k in by_msg[msg], f"'{msg}' lacks '{k}'"
cfg = by_msg["effective_config"]["config"]
assert cfg["scheduler"]["queue_timeout_s"] == 0.05, cfg["scheduler"]
assert all("\n" not in r["msg"] for r in records), "a multi-line msg"
assert "0.050000000000000003" not in open(sys.argv[1]).read()
PY

# --- bench serve: error summaries, hints and exit codes ---
expect "bench against no server hints at starting one" 1 "is the server running at http://127.0.0.1:18483" -- \
  "$PAGODA" bench serve --url http://127.0.0.1:18483 --num-prompts 2 --no-progress
"$PAGODA" serve --port 18484 --max-model-len 64 --api-key sekret >"$tmp/bench_server.log" 2>&1 &
pids+=($!)
wait_healthy 18484 "${pids[-1]}"; check "bench target server starts" $? "$(tail -5 "$tmp/bench_server.log")"
expect "bench without the key hints at --api-key" 1 "OPENAI_API_KEY" -- \
  "$PAGODA" bench serve --url http://127.0.0.1:18484 --num-prompts 2 --no-progress
out=$(OPENAI_API_KEY=sekret "$PAGODA" bench serve --url http://127.0.0.1:18484 --num-prompts 4 --input-len 100 \
  --output-len 4 --no-progress 2>&1); status=$?
[[ $status -eq 1 && "$out" == *"http_400:"*"first error:"*"maximum context length is 64"* && "$out" == *"4 of 4 requests failed"* ]]
check "failed requests exit 1 with the first error of their class" $? "exit $status: ${out:0:1200}"
out=$(OPENAI_API_KEY=sekret "$PAGODA" bench serve --url http://127.0.0.1:18484 --num-prompts 4 --input-len 8 \
  --output-len 4 --seed 7 --no-progress 2>&1); status=$?
[[ $status -eq 0 && "$out" == *"workload seed 7"* && "$out" == *"Successful requests:                      4"* ]]
check "a clean run exits 0 and names its seed" $? "exit $status: ${out:0:800}"
expect "--max-failed-ratio lets failures pass" 0 "Failed requests:" -- env OPENAI_API_KEY=sekret \
  "$PAGODA" bench serve --url http://127.0.0.1:18484 --num-prompts 2 --input-len 100 --output-len 4 --no-progress --max-failed-ratio 1
again=(env OPENAI_API_KEY=sekret "$PAGODA" bench serve --url http://127.0.0.1:18484 --num-prompts 4 --input-len 40
       --output-len 2 --seed 8 --no-progress)
"${again[@]}" >/dev/null 2>&1
expect "random prompts sent twice are flagged" 0 "were sent before" -- "${again[@]}"
out=$(OPENAI_API_KEY=sekret "$PAGODA" bench serve --url http://127.0.0.1:18484 --duration 6 --max-concurrency 1 \
  --input-len 8 --output-len 8 2>&1 | cat)
[[ "$out" == *"%"*"ETA"* ]]; check "progress lines with percentage and ETA when not on a terminal" $? "${out:0:800}"
touch "$tmp/sweep_sweep.dat"
expect "a sweep will not silently replace earlier plots" 2 "pass --overwrite" -- env OPENAI_API_KEY=sekret \
  "$PAGODA" bench serve --url http://127.0.0.1:18484 --num-prompts 2 --input-len 8 --output-len 2 --no-progress \
  --sweep max-concurrency=1,2 --plot-prefix "$tmp/sweep"
expect "a sweep keeps its inf point in the .dat" 0 "wrote $tmp/sweep_sweep.dat" -- env OPENAI_API_KEY=sekret \
  "$PAGODA" bench serve --url http://127.0.0.1:18484 --num-prompts 2 --input-len 8 --output-len 2 --no-progress \
  --sweep request-rate=4,inf --plot-prefix "$tmp/sweep" --overwrite --repeat 2
grep -q " inf " "$tmp/sweep_sweep.dat"; check "the .dat has the inf point" $? "$(cat "$tmp/sweep_sweep.dat")"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}"

echo "operator: $fails failed"
[[ $fails -eq 0 ]]
