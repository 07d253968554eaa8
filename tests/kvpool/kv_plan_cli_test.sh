#!/usr/bin/env bash
# `pagoda kv-plan`: the printed figures for the textbook cases and the exit
# code for bad flags.
set -u
PAGODA=${1:?usage: kv_plan_cli_test.sh PATH_TO_PAGODA}
fails=0

expect_line() {  # expect_line NAME WANT_LINE -- command...
  local name=$1 want=$2; shift 3
  local out status
  out=$("$@" 2>&1); status=$?
  if [[ $status -ne 0 ]]; then echo "FAIL $name: exit $status: $out"; fails=$((fails+1)); return; fi
  if ! grep -qxF -- "$want" <<<"$out"; then echo "FAIL $name: no line '$want' in: $out"; fails=$((fails+1)); return; fi
  echo "ok   $name"
}

plan=("$PAGODA" kv-plan --layers 1 --head-dim 128 --tokens 4000)
expect_line "32 heads f16" "kv_bytes_for_tokens: 65536000" -- "${plan[@]}" --kv-heads 32 --dtype f16
expect_line "8 heads f16" "kv_bytes_for_tokens: 16384000" -- "${plan[@]}" --kv-heads 8 --dtype f16
expect_line "16 heads f16" "kv_bytes_for_tokens: 32768000" -- "${plan[@]}" --kv-heads 16 --dtype f16
expect_line "1 head f16" "kv_bytes_for_tokens: 2048000" -- "${plan[@]}" --kv-heads 1 --dtype f16
expect_line "32 heads int8 halves" "kv_bytes_for_tokens: 32768000" -- "${plan[@]}" --kv-heads 32 --dtype int8
expect_line "int8 scales apart" "kv_scale_bytes_for_tokens: 1024000" -- "${plan[@]}" --kv-heads 32 --dtype int8
expect_line "32 heads int4 quarters" "kv_bytes_for_tokens: 16384000" -- "${plan[@]}" --kv-heads 32 --dtype int4
expect_line "pages from --num-pages" "max_tokens_in_flight: 1584" -- "${plan[@]}" --kv-heads 8 --dtype f16 --num-pages 100
expect_line "pages from --memory-gib" "num_pages: 16384" -- "${plan[@]}" --kv-heads 8 --dtype f16 --memory-gib 1
expect_line "--page-size" "page_bytes: 131072" -- "${plan[@]}" --kv-heads 8 --dtype f16 --page-size 32

out=$("$PAGODA" kv-plan --layers 1 --kv-heads 8 --head-dim 128 --dtype fp8 2>&1); status=$?
if [[ $status -eq 2 && "$out" == *"f32, bf16, f16, int8, int4"* ]]; then echo "ok   bad dtype exits 2"; else
  echo "FAIL bad dtype: exit $status: $out"; fails=$((fails+1)); fi
out=$("$PAGODA" kv-plan --layers 0 --kv-heads 8 --head-dim 128 2>&1); status=$?
if [[ $status -eq 2 && "$out" == *"--layers: got 0"* ]]; then echo "ok   bad layers exits 2 naming the flag"; else
  echo "FAIL bad layers: exit $status: $out"; fails=$((fails+1)); fi

# The shape read from a model: stories260K has 5 layers, 4 KV heads, head_dim 8,
# so f32 K+V is 2*4*8*4 = 256 bytes per token per layer: 100 tokens = 128,000.
expect_line "shape from --model" "kv_bytes_for_tokens: 128000" -- "$PAGODA" kv-plan --model models/stories260K.bin --tokens 100
# No shape: the config's model, as serve would load it (the default is stories260K).
expect_line "no shape plans the config's model" "kv_bytes_for_tokens: 128000" -- "$PAGODA" kv-plan --tokens 100

exit $(( fails > 0 ))
