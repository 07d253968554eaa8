#!/usr/bin/env bash
# Writes a Hugging Face tokenizer.json of Meta's Llama 3 tokenizer (128,000
# BPE tokens, 280,147 merges, 256 special tokens) from the npm package
# llama3-tokenizer-js, which bakes in that tokenizer.json's vocabulary and
# merges. For MaskBench with a 128k vocabulary (issue 27: larger vocabularies
# within 2x of the 32k/49k times); ../shared has no Llama 3 tokenizer.
# Needs node and the npm registry (not used by any test).
# Usage: bench/make_llama3_tokenizer.sh OUT_DIR
#   then: python3 bench/maskbench.py --tokenizer OUT_DIR
set -euo pipefail
out="${1:?usage: make_llama3_tokenizer.sh OUT_DIR}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent llama3-tokenizer-js@1.2.0 > /dev/null && tar xzf llama3-tokenizer-js-1.2.0.tgz)
mkdir -p "$out"
node - "$work/package/bundle/commonjs-llama3-tokenizer-with-baked-data.cjs" "$out" <<'JS'
const fs = require('fs');
const [bundle, out] = process.argv.slice(2);
const { llama3Tokenizer: t } = require(bundle);
const vocab = {};
t.vocabById.forEach((s, id) => { if (id < 128000) vocab[s] = id; });
// The package keeps merges as "a b" -> priority; tokenizer.json lists them in order.
const merges = [...t.merges.entries()].sort((a, b) => a[1] - b[1]).map(e => e[0]);
const added = [];
for (let id = 128000; id < t.vocabById.length; ++id) {
  added.push({id, content: t.vocabById[id], single_word: false, lstrip: false, rstrip: false, normalized: false,
              special: true});
}
// Llama 3's pre-tokenizer (the package's DIRTY_LLAMA3_REGEX_STRING, as in Meta's file).
const regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const bos = {SpecialToken: {id: "<|begin_of_text|>", type_id: 0}};
const tokenizer = {
  version: "1.0", truncation: null, padding: null, added_tokens: added, normalizer: null,
  pre_tokenizer: {type: "Sequence", pretokenizers: [
    {type: "Split", pattern: {Regex: regex}, behavior: "Isolated", invert: false},
    {type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false}]},
  post_processor: {type: "TemplateProcessing", single: [bos, {Sequence: {id: "A", type_id: 0}}],
                   pair: [bos, {Sequence: {id: "A", type_id: 0}}, {Sequence: {id: "B", type_id: 1}}],
                   special_tokens: {"<|begin_of_text|>": {id: "<|begin_of_text|>", ids: [128000],
                                                          tokens: ["<|begin_of_text|>"]}}},
  decoder: {type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true},
  model: {type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
          fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges}
};
fs.writeFileSync(out + '/tokenizer.json', JSON.stringify(tokenizer));
fs.writeFileSync(out + '/tokenizer_config.json',
                 JSON.stringify({bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>"}));
// A check against the package's own encoder, for the caller to compare.
const sample = "Hello world! {\"a\": 12345, \"b\": [\"x y\"]}\n\tÉté 😀";
fs.writeFileSync(out + '/sample.json', JSON.stringify({text: sample, ids: t.encode(sample, {bos: false, eos: false})}));
console.log(`${Object.keys(vocab).length} tokens, ${merges.length} merges, ${added.length} special tokens -> ${out}`);
JS
