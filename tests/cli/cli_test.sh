#!/usr/bin/env bash
# The pagoda binary's command-line contract: exit codes and messages for
# config errors, `config check` output, and that serve answers /health.
set -u
PAGODA=${1:?usage: cli_test.sh PATH_TO_PAGODA}
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null' EXIT

expect() {  # expect NAME WANT_STATUS WANT_FRAGMENT -- command...
  local name=$1 want=$2 frag=$3; shift 4
  local out status
  out=$("$@" 2>&1); status=$?
  if [[ $status -ne $want ]]; then
    echo "FAIL $name: exit $status, want $want; output: $out"; fails=$((fails+1)); return
  fi
  if [[ -n "$frag" && "$out" != *"$frag"* ]]; then
    echo "FAIL $name: output lacks '$frag': $out"; fails=$((fails+1)); return
  fi
  echo "ok   $name"
}

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
expect "config check prints the effective config" 0 "page_size: 32" -- "$PAGODA" config check "$tmp/good.yaml" --no-path-check
expect "--set beats the file" 0 "page_size: 64" -- "$PAGODA" config check "$tmp/good.yaml" --no-path-check --set kv.page_size=64
expect "default.yaml is valid" 0 "valid" -- "$PAGODA" config check config/default.yaml --no-path-check

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

echo "cli: $fails failed"
[[ $fails -eq 0 ]]
