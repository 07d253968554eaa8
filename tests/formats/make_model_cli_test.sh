#!/usr/bin/env bash
# `pagoda make-model`: exit codes, reproducible bytes, and a loadable size.
# Usage: make_model_cli_test.sh PAGODA_BIN
set -u
bin="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin" make-model --preset tiny --out "$tmp/a.bin" --seed 5 >/dev/null || fail "tiny a"
"$bin" make-model --preset tiny --out "$tmp/b.bin" --seed 5 >/dev/null || fail "tiny b"
"$bin" make-model --preset tiny --out "$tmp/c.bin" --seed 6 >/dev/null || fail "tiny c"
cmp -s "$tmp/a.bin" "$tmp/b.bin" || fail "same seed gave different bytes"
cmp -s "$tmp/a.bin" "$tmp/c.bin" && fail "different seeds gave the same bytes"
# tiny: 28-byte header + 164160 parameters + 2 RoPE tables (256 * 16 floats).
size=$(stat -c %s "$tmp/a.bin")
[ "$size" -eq $((28 + 4 * (164160 + 256 * 16))) ] || fail "tiny size $size"
[ -e "$tmp/a.bin.part" ] && fail "left a .part file"

"$bin" make-model --preset nope --out "$tmp/x.bin" 2>/dev/null
[ $? -eq 2 ] || fail "unknown preset should exit 2"
"$bin" make-model --preset tiny --out "$tmp/no/such/dir/x.bin" 2>"$tmp/err"
[ $? -eq 1 ] || fail "unwritable path should exit 1"
grep -q "cannot create" "$tmp/err" || fail "error message: $(cat "$tmp/err")"
# --format hf: a Hugging Face directory (config.json + shards + index), reproducible.
"$bin" make-model --preset tiny --format hf --family qwen2 --shards 2 --hf-dtype bf16 --out "$tmp/hf1" >/dev/null || fail "hf qwen2"
"$bin" make-model --preset tiny --format hf --family qwen2 --shards 2 --hf-dtype bf16 --out "$tmp/hf2" >/dev/null || fail "hf qwen2 again"
for f in config.json model.safetensors.index.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors; do
  cmp -s "$tmp/hf1/$f" "$tmp/hf2/$f" || fail "hf: $f differs for the same seed"
done
grep -q '"Qwen2ForCausalLM"' "$tmp/hf1/config.json" || fail "hf config.json architecture"
"$bin" make-model --preset tiny --family llama3 --out "$tmp/z.bin" 2>/dev/null
[ $? -eq 2 ] || fail "--family without --format hf should exit 2"
# --format gguf --quant q4_k_m: llama.cpp's Q4_K_M mix; tiny's rows (64, 192) fit no K type, so each
# matrix falls back as llama.cpp's would (q5_0, q8_0) and the output says so.
"$bin" make-model --preset tiny --format gguf --quant q4_k_m --out "$tmp/t.gguf" >"$tmp/out" || fail "gguf q4_k_m"
grep -q "written in a fallback type" "$tmp/out" || fail "q4_k_m output: $(cat "$tmp/out")"
"$bin" make-model --preset tiny --format gguf --quant q4_k --out "$tmp/u.gguf" 2>/dev/null
[ $? -eq 2 ] || fail "--quant q4_k should exit 2"
echo "make_model_cli_test: ok"
