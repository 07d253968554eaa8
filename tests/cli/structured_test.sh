#!/usr/bin/env bash
# `pagoda structured check`: a text checked token by token against a grammar,
# as MaskBench scores an engine; exit codes; --jsonl with the spec per line
# and with the spec from a flag; compiled grammars cached across lines.
# Usage: structured_test.sh PAGODA_BIN (cwd: the repository root, ../shared beside it)
set -uo pipefail
PAGODA=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cli/expect.sh
source "$here/expect.sh"
tok=../shared/tokenizers/SmolLM2-135M-Instruct
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/person.json" <<'JSON'
{"type":"object","properties":{"name":{"type":"string","maxLength":8},"age":{"type":"integer","minimum":0,"maximum":150}},
 "required":["name","age"],"additionalProperties":false}
JSON
printf 'root ::= "(" [0-9]+ ")"\n' > "$tmp/paren.gbnf"

expect "a valid instance is accepted" 0 '"accepted":true' -- \
  "$PAGODA" structured check --tokenizer "$tok" --schema "$tmp/person.json" '{"name":"Ann","age":31}'
expect "an out-of-range integer is stopped" 1 '"accepted":false' -- \
  "$PAGODA" structured check --tokenizer "$tok" --schema "$tmp/person.json" '{"name":"Ann","age":151}'
expect "a too long string is stopped" 1 '"rejected_at":' -- \
  "$PAGODA" structured check --tokenizer "$tok" --schema "$tmp/person.json" '{"name":"Annabelle!","age":3}'
expect "an unfinished instance is refused at the end (EOS not allowed)" 1 '"rejected_at":' -- \
  "$PAGODA" structured check --tokenizer "$tok" --schema "$tmp/person.json" '{"name":"Ann"'
expect "whitespace is not compact JSON" 1 '"accepted":false' -- \
  "$PAGODA" structured check --tokenizer "$tok" --schema "$tmp/person.json" '{"name": "Ann", "age": 3}'
expect "regex" 0 '"accepted":true' -- "$PAGODA" structured check --tokenizer "$tok" --regex '[a-c]{2}-[0-9]+' 'ab-123'
expect "regex rejects" 1 '"accepted":false' -- "$PAGODA" structured check --tokenizer "$tok" --regex '[a-c]{2}-[0-9]+' 'ad-1'
expect "gbnf" 0 '"accepted":true' -- "$PAGODA" structured check --tokenizer "$tok" --grammar "$tmp/paren.gbnf" '(42)'
expect "an unsupported construct is named" 1 "backreference" -- \
  "$PAGODA" structured check --tokenizer "$tok" --regex '(a)\1' 'aa'
expect "two grammar flags" 2 "one of" -- \
  "$PAGODA" structured check --tokenizer "$tok" --regex a --grammar "$tmp/paren.gbnf" a
expect "no grammar" 2 "give --schema" -- "$PAGODA" structured check --tokenizer "$tok" text

# --jsonl: one result per line, the spec per line or from the flag.
{
  echo '{"schema":{"type":"boolean"},"text":"true"}'
  echo '{"schema":{"type":"boolean"},"text":"yes"}'
  echo '{"choice":["red","green"],"text":"green"}'
  echo '{"regex":"x+","text":"xxx"}'
} > "$tmp/lines.jsonl"
"$PAGODA" structured check --tokenizer "$tok" --jsonl < "$tmp/lines.jsonl" > "$tmp/out.jsonl"
check "jsonl exit 1 when one line is rejected" $(( $? == 1 ? 0 : 1 )) "exit $?"
accepted=$(python3 -c 'import json,sys; print([json.loads(l)["accepted"] for l in open(sys.argv[1])])' "$tmp/out.jsonl")
check "jsonl results in order" "$([[ "$accepted" == "[True, False, True, True]" ]]; echo $?)" "$accepted"
masks=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(all(len(x["mask_us"])>=2 for x in r if x["accepted"]))' "$tmp/out.jsonl")
check "jsonl gives a mask time per token and one at the end" "$([[ "$masks" == "True" ]]; echo $?)" "$masks"
printf '%s\n' '{"text":"{\"name\":\"Al\",\"age\":1}"}' '{"text":"{\"name\":\"Al\",\"age\":2}"}' |
  "$PAGODA" structured check --tokenizer "$tok" --schema "$tmp/person.json" --jsonl > "$tmp/flag.jsonl"
check "jsonl with the schema from --schema" $? "exit $?"
expect "a line that is not an object" 2 "stdin line 1" -- bash -c "echo '[1]' | '$PAGODA' structured check --tokenizer '$tok' --jsonl"

if [[ $fails -ne 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all passed"
