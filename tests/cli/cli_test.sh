#!/usr/bin/env bash
# The pagoda binary's command-line contract: exit codes and messages for
# config errors, `config check` output, and that serve answers /health.
set -u
PAGODA=${1:?usage: cli_test.sh PATH_TO_PAGODA}
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null' EXIT

# shellcheck source=tests/cli/expect.sh
source "$(dirname "$0")/expect.sh"

printf 'kv:\n  page_size: 12\n' > "$tmp/bad.yaml"
printf 'kv:\n  page_size: 32\n' > "$tmp/good.yaml"
expect "bad value exits 2 naming the key" 2 "'kv.page_size': got '12'" -- "$PAGODA" config check "$tmp/bad.yaml" --no-path-check
expect "serve with bad config exits 2" 2 "'kv.page_size'" -- "$PAGODA" serve --config "$tmp/bad.yaml"
expect "unknown --set key exits 2" 2 "did you mean 'kv.page_size'" -- "$PAGODA" serve --set kv.pagesize=16
expect "missing config file exits 2" 2 "cannot read config file" -- "$PAGODA" serve --config "$tmp/none.yaml"
expect "missing model exits 2 naming model.path" 2 "'model.path'" -- "$PAGODA" serve --model "$tmp/none.bin"
expect "unknown flag exits 2" 2 "" -- "$PAGODA" serve --no-such-flag
# A listen address that is neither an IP nor a resolvable name (RFC 6761:
# .invalid never resolves) is found before the model loads.
expect "unresolvable server.host exits 2 naming the key" 2 "'server.host'" -- "$PAGODA" serve --host pagoda-no-such-host.invalid
# A config that cannot be read is never "the defaults" (which would drop,
# say, the intended server.api_keys).
expect "a directory as config file exits 2 (check)" 2 "is a directory" -- "$PAGODA" config check "$tmp" --no-path-check
expect "a directory as config file exits 2 (serve)" 2 "is a directory" -- timeout 60 "$PAGODA" serve --config "$tmp" --port 18474
printf 'kv:\n  page_size: 32\n  page_size: 64\n' > "$tmp/dup.yaml"
expect "a duplicate key exits 2 naming it" 2 "'kv.page_size' appears twice" -- "$PAGODA" config check "$tmp/dup.yaml" --no-path-check
printf 'kv:\n  page_size: 32\nkv:\n  dtype: f32\n' > "$tmp/dupsec.yaml"
expect "a duplicate section exits 2 naming it" 2 "section 'kv' appears twice" -- "$PAGODA" config check "$tmp/dupsec.yaml" --no-path-check
printf 'kv:\n  page_size: 32\n---\nserver:\n  api_keys: [k]\n' > "$tmp/twodocs.yaml"
expect "a second YAML document exits 2" 2 "2 YAML documents" -- "$PAGODA" config check "$tmp/twodocs.yaml" --no-path-check
expect "config check prints the effective config" 0 "page_size: 32" -- "$PAGODA" config check "$tmp/good.yaml" --no-path-check
expect "--set beats the file" 0 "page_size: 64" -- "$PAGODA" config check "$tmp/good.yaml" --no-path-check --set kv.page_size=64
expect "default.yaml is valid" 0 "valid" -- "$PAGODA" config check config/default.yaml --no-path-check
expect "PAGODA_KV_PAGE_SIZE beats the file" 0 "page_size: 64" -- env PAGODA_KV_PAGE_SIZE=64 "$PAGODA" config check "$tmp/good.yaml" --no-path-check
expect "--set beats PAGODA_KV_PAGE_SIZE" 0 "page_size: 16" -- env PAGODA_KV_PAGE_SIZE=64 "$PAGODA" config check "$tmp/good.yaml" --no-path-check --set kv.page_size=16
expect "a PAGODA_<SECTION>_ variable naming no key exits 2 naming it" 2 "'PAGODA_KV_PAGESIZE'" -- env PAGODA_KV_PAGESIZE=64 "$PAGODA" serve

# A model file that is not a checkpoint: a start-up error naming the key.
head -c 100 /dev/urandom > "$tmp/junk.bin"
expect "corrupt model exits 2 naming model.path" 2 "'model.path'" -- "$PAGODA" serve --model "$tmp/junk.bin"
expect "tokenizer of the wrong model exits 2" 2 "'model.tokenizer'" -- "$PAGODA" serve --tokenizer models/tokenizer.bin

# serve: the default config (models/ from tools/setup.sh) on a test port,
# probe /health, SIGTERM -> exit 0.
"$PAGODA" serve --port 18471 --set logging.format=json >"$tmp/serve.log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 600); do
  if curl -sf http://127.0.0.1:18471/health >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
if [[ $ok -eq 1 ]]; then echo "ok   serve answers /health"; else echo "FAIL serve /health"; cat "$tmp/serve.log"; fails=$((fails+1)); fi
kill -TERM "$pid"; wait "$pid"; status=$?; pid=
if [[ $status -eq 0 ]]; then echo "ok   SIGTERM exits 0"; else echo "FAIL SIGTERM exit $status"; fails=$((fails+1)); fi
if grep -q '"level":"info"' "$tmp/serve.log"; then echo "ok   json log lines"; else echo "FAIL json logs"; cat "$tmp/serve.log"; fails=$((fails+1)); fi
if grep -q '"cpu":"[^"]*","kernels":"[a-z0-9_]*","kernels_chosen_by":"engine.isa=auto"' "$tmp/serve.log"; then echo "ok   the start-up log names the kernel level and CPU"
else echo "FAIL no kernel level in the start-up log"; cat "$tmp/serve.log"; fails=$((fails+1)); fi

# Kernel levels (engine/kernels/isa_begin.h): `pagoda info`, PAGODA_ISA and
# engine.isa; a level the CPU lacks or an unknown name exits 2 naming its source.
expect "info names the version, CPU and chosen level" 0 "kernel level chosen: " -- "$PAGODA" info
expect "info is a portable build by default" 0 "portable" -- "$PAGODA" info
expect "PAGODA_ISA=avx2 is the chosen level" 0 "kernel level chosen: avx2 (PAGODA_ISA=avx2)" -- env PAGODA_ISA=avx2 "$PAGODA" info
expect "engine.isa=baseline is the chosen level" 0 "kernel level chosen: baseline (engine.isa=baseline)" -- "$PAGODA" info --set engine.isa=baseline
expect "PAGODA_ISA beats engine.isa" 0 "kernel level chosen: avx2 (PAGODA_ISA=avx2)" -- env PAGODA_ISA=avx2 "$PAGODA" info --set engine.isa=baseline
expect "an unknown engine.isa exits 2 naming the key" 2 "'engine.isa'" -- "$PAGODA" serve --set engine.isa=avx9
expect "an unknown PAGODA_ISA exits 2 naming it" 2 "'PAGODA_ISA'" -- env PAGODA_ISA=avx9 "$PAGODA" serve --port 18475
expect "bf16 weights below AVX-512 exit 2 naming model.weight_dtype" 2 "'model.weight_dtype': " -- env PAGODA_ISA=avx2 timeout 60 "$PAGODA" serve --port 18477 --set model.weight_dtype=bf16
if ! "$PAGODA" info | grep -q "supports: .*amx"; then
  expect "a level the CPU lacks exits 2 before loading" 2 "cannot run 'amx'" -- env PAGODA_ISA=amx "$PAGODA" serve --port 18476
fi

# SIGPIPE: the log's reader goes away (a pager quit, a log shipper
# restarts); the server goes on serving, however often it logs.
mkfifo "$tmp/log.fifo"
head -c 1 <"$tmp/log.fifo" >/dev/null &
"$PAGODA" serve --port 18472 --set logging.level=info >"$tmp/log.fifo" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 600); do
  if curl -sf http://127.0.0.1:18472/health >/dev/null 2>&1; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -HUP "$pid" 2>/dev/null  # one more log line into the broken pipe
sleep 0.3
if [[ $ok -eq 1 ]] && curl -sf http://127.0.0.1:18472/health >/dev/null 2>&1; then
  echo "ok   serving with its log pipe's reader gone (SIGPIPE ignored)"
else
  echo "FAIL the server died when its log pipe's reader went away"; fails=$((fails+1))
fi
kill -TERM "$pid" 2>/dev/null; wait "$pid"; status=$?; pid=
if [[ $status -eq 0 ]]; then echo "ok   SIGTERM exits 0 with a broken log pipe"; else echo "FAIL exit $status with a broken log pipe"; fails=$((fails+1)); fi

# SIGHUP (the terminal closed): logged and ignored; a stream in flight ends
# with [DONE].
"$PAGODA" serve --port 18473 --set logging.level=info >"$tmp/hup.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do curl -sf http://127.0.0.1:18473/health >/dev/null 2>&1 && break; sleep 0.1; done
curl -sN http://127.0.0.1:18473/v1/completions \
  -d '{"prompt": "Once upon a time", "max_tokens": 480, "ignore_eos": true, "stream": true}' >"$tmp/stream.txt" &
curl_pid=$!
sleep 0.02
kill -HUP "$pid"
wait "$curl_pid"
sleep 0.2
if grep -q 'data: \[DONE\]' "$tmp/stream.txt" && curl -sf http://127.0.0.1:18473/health >/dev/null 2>&1 &&
   grep -q 'SIGHUP' "$tmp/hup.log"; then
  echo "ok   SIGHUP is logged and ignored; the stream finished"
else
  echo "FAIL SIGHUP: stream tail: $(tail -c 200 "$tmp/stream.txt"); log: $(tail -3 "$tmp/hup.log")"; fails=$((fails+1))
fi
kill -TERM "$pid"; wait "$pid"; status=$?; pid=
if [[ $status -eq 0 ]]; then echo "ok   SIGTERM after SIGHUP exits 0"; else echo "FAIL exit $status after SIGHUP"; fails=$((fails+1)); fi

echo "cli: $fails failed"
[[ $fails -eq 0 ]]
