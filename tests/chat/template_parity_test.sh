#!/usr/bin/env bash
# Every real chat template (../shared/chat-templates/*.jinja) renders every
# conversation (tests/chat/conversations/*.json) byte for byte as Hugging
# Face's Jinja2 does (tests/chat/render_reference.py): with and without the
# conversation's tools, with add_generation_prompt true and false. When the
# reference fails (raise_exception, or a Jinja2 error such as adding a string
# to a dict), `pagoda chat-template render` must fail too, with exit 1.
# Usage: template_parity_test.sh PAGODA_BIN (cwd: the repository root, ../shared beside it)
set -uo pipefail
PAGODA=$1
here=$(cd "$(dirname "$0")" && pwd)
templates=../shared/chat-templates
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# BOS and EOS text of each family, as its tokenizer_config.json has them (Qwen has no BOS).
set_tokens() {
  case $1 in
    CohereForAI-*) bos='<BOS_TOKEN>' eos='<|END_OF_TURN_TOKEN|>' ;;
    NousResearch-*) bos='<|begin_of_text|>' eos='<|im_end|>' ;;
    Qwen-*) bos='' eos='<|im_end|>' ;;
    deepseek-ai-* | llama-cpp-deepseek-r1*) bos='<｜begin▁of▁sentence｜>' eos='<｜end▁of▁sentence｜>' ;;
    google-gemma-*) bos='<bos>' eos='<eos>' ;;
    microsoft-Phi-3.5-*) bos='<s>' eos='<|endoftext|>' ;;
    mistralai-*) bos='<s>' eos='</s>' ;;
    *) bos='<|begin_of_text|>' eos='<|eot_id|>' ;;  # Llama 3.x, firefunction, functionary
  esac
}

# One request body per conversation and variant: NAME[.notools].gen|nogen.json
python3 - "$here/conversations" "$tmp/bodies" <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
for f in sorted(os.listdir(src)):
    body = json.load(open(os.path.join(src, f), encoding="utf-8"))
    name = f[:-len(".json")]
    variants = {name: body}
    if "tools" in body:
        variants[name + ".notools"] = {k: v for k, v in body.items() if k != "tools"}
    for vname, v in variants.items():
        for gen in (True, False):
            out = dict(v, add_generation_prompt=gen)
            with open(os.path.join(dst, f"{vname}.{'gen' if gen else 'nogen'}.json"), "w", encoding="utf-8") as o:
                json.dump(out, o, ensure_ascii=False)
PY
[[ -n $(ls "$tmp/bodies") ]] || { echo "FAIL no conversations in $here/conversations"; exit 1; }

# The references, in one Python run.
mkdir -p "$tmp/want"
for t in "$templates"/*.jinja; do
  base=$(basename "$t" .jinja)
  set_tokens "$base"
  for b in "$tmp"/bodies/*.json; do  # (no quotes or backslashes in these strings)
    printf '{"template": "%s", "bos": "%s", "eos": "%s", "body": "%s", "out": "%s"}\n' \
      "$t" "$bos" "$eos" "$b" "$tmp/want/$base.$(basename "$b" .json)"
  done
done > "$tmp/jobs.jsonl"
python3 "$here/render_reference.py" --batch "$tmp/jobs.jsonl" || { echo "FAIL the reference renderer"; exit 1; }

fails=0 matched=0 both_failed=0
for t in "$templates"/*.jinja; do
  base=$(basename "$t" .jinja)
  set_tokens "$base"
  ok=0 failed=0 bad=0
  for b in "$tmp"/bodies/*.json; do
    case=$(basename "$b" .json)
    want="$tmp/want/$base.$case"
    want_rc=$(cat "$want.rc")
    "$PAGODA" chat-template render --template "$t" --bos-token "$bos" --eos-token "$eos" \
      < "$b" > "$tmp/got" 2> "$tmp/got.err"
    got_rc=$?
    if [[ $want_rc -ne 0 ]]; then
      if [[ $got_rc -eq 1 ]]; then
        failed=$((failed + 1))
      else
        echo "FAIL $base / $case: jinja2 fails ($(head -c 200 "$want.err")) but pagoda exits $got_rc"
        bad=$((bad + 1))
      fi
    elif [[ $got_rc -ne 0 ]]; then
      echo "FAIL $base / $case: pagoda exits $got_rc: $(head -c 300 "$tmp/got.err")"
      bad=$((bad + 1))
    elif ! cmp -s "$want" "$tmp/got"; then
      echo "FAIL $base / $case: the prompts differ (jinja2 first, then pagoda, as Python literals)"
      diff <(python3 -c 'import sys; print(repr(open(sys.argv[1], encoding="utf-8").read()))' "$want") \
        <(python3 -c 'import sys; print(repr(open(sys.argv[1], encoding="utf-8").read()))' "$tmp/got") | head -c 1500
      echo
      bad=$((bad + 1))
    else
      ok=$((ok + 1))
    fi
  done
  [[ $bad -eq 0 ]] && echo "ok   $base: $ok identical, $failed refused by both"
  fails=$((fails + bad)) matched=$((matched + ok)) both_failed=$((both_failed + failed))
done
echo "$matched prompts identical, $both_failed refused by both, $fails failure(s)"
[[ $fails -eq 0 ]]
