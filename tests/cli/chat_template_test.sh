#!/usr/bin/env bash
# `pagoda chat-template render`: a model directory's own template gives what
# Jinja2 gives with that template and the tokenizer's BOS/EOS; exit codes
# (1: the template fails, 2: bad input or flags); no trailing newline added.
# Usage: chat_template_test.sh PAGODA_BIN (cwd: the repository root, ../shared beside it)
set -uo pipefail
PAGODA=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cli/expect.sh
source "$here/expect.sh"
model=../shared/tokenizers/SmolLM2-135M-Instruct
gemma=../shared/chat-templates/google-gemma-2-2b-it.jinja
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

body='{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}'

# --model: the template and the BOS/EOS text from tokenizer_config.json.
python3 - "$model/tokenizer_config.json" "$tmp" <<'PY'
import json, sys
c = json.load(open(sys.argv[1], encoding="utf-8"))
text = lambda t: t.get("content", "") if isinstance(t, dict) else (t or "")
open(sys.argv[2] + "/template.jinja", "w", encoding="utf-8").write(c["chat_template"])
open(sys.argv[2] + "/bos", "w", encoding="utf-8").write(text(c.get("bos_token")))
open(sys.argv[2] + "/eos", "w", encoding="utf-8").write(text(c.get("eos_token")))
PY
printf '%s' "$body" | "$PAGODA" chat-template render --model "$model" > "$tmp/got"
check "--model renders (exit 0)" $? "exit $?"
printf '%s' "$body" | python3 tests/chat/render_reference.py --template "$tmp/template.jinja" \
  --bos-token "$(cat "$tmp/bos")" --eos-token "$(cat "$tmp/eos")" > "$tmp/want"
cmp -s "$tmp/want" "$tmp/got"
check "--model gives Jinja2's text for the model's own template" $? "$(head -c 300 "$tmp/got")"

printf '%s' '{"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": false}' |
  "$PAGODA" chat-template render --template "$gemma" --bos-token '<bos>' > "$tmp/gemma"
check "--template renders (exit 0)" $? "exit $?"
[[ $(cat "$tmp/gemma"; echo .) == $'<bos><start_of_turn>user\nHi<end_of_turn>\n.' ]]
check "--template output is exact" $? "$(od -c "$tmp/gemma" | head -5)"

expect "raise_exception exits 1 with the message" 1 "System role not supported" -- \
  bash -c "printf '%s' '$body' | '$PAGODA' chat-template render --template '$gemma'"
expect "--fallback shows what the server sends" 0 "rendered with" -- \
  bash -c "printf '%s' '$body' | '$PAGODA' chat-template render --model '$model' --fallback"
expect "not JSON exits 2" 2 "not JSON" -- bash -c "echo '{' | '$PAGODA' chat-template render --template '$gemma'"
expect "no messages exits 2" 2 "messages" -- bash -c "echo '{}' | '$PAGODA' chat-template render --template '$gemma'"
expect "a bad tool call exits 2" 2 "messages[0].tool_calls[0].function" -- bash -c \
  "echo '{\"messages\": [{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"x\"}]}]}' | '$PAGODA' chat-template render --template '$gemma'"
expect "tools must be a list" 2 "tools" -- bash -c \
  "echo '{\"messages\": [], \"tools\": {}}' | '$PAGODA' chat-template render --template '$gemma'"
expect "neither --model nor --template exits 2" 2 "give one of" -- bash -c "echo '{}' | '$PAGODA' chat-template render"
expect "a missing template file exits 2" 2 "cannot read" -- \
  bash -c "printf '%s' '$body' | '$PAGODA' chat-template render --template /nonexistent.jinja"
printf '{{ x' > "$tmp/broken.jinja"
expect "a template that does not parse exits 1" 1 "unclosed" -- \
  bash -c "printf '%s' '$body' | '$PAGODA' chat-template render --template '$tmp/broken.jinja'"

if [[ $fails -ne 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all passed"
