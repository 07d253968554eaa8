// Fuzz target: tokenizer encode of arbitrary bytes, decode of arbitrary ids,
// and StreamingDetokenizer over arbitrary id sequences, on the two llama2.c
// tokenizers in models/ (tok512.bin, 512 pieces; tokenizer.bin, Llama 2's
// 32000). Input byte 0: bit 0 picks the tokenizer, bits 1-2 the mode.
// Checks: encode gives ids in range and decodes back to the input bytes
// (byte fallback loses nothing); decode never fails on any id; every
// detokenizer delta is valid UTF-8, at most 3 bytes are held back, and when
// the raw piece bytes are valid UTF-8 the deltas add up to exactly them.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer_llama2c.h"

using namespace pagoda;

namespace {

const Tokenizer& tokenizer(int which) {
  static const std::unique_ptr<Llama2cTokenizer> toks[2] = {
      [] {
        auto t = Llama2cTokenizer::load(PAGODA_SOURCE_DIR "/models/tok512.bin");
        FUZZ_CHECK(t.is_ok());
        return std::move(t).value();
      }(),
      [] {
        auto t = Llama2cTokenizer::load(PAGODA_SOURCE_DIR "/models/tokenizer.bin");
        FUZZ_CHECK(t.is_ok());
        return std::move(t).value();
      }()};
  return *toks[which];
}

std::vector<int32_t> ids_of(const uint8_t* data, size_t size, int32_t vocab, bool in_range) {
  std::vector<int32_t> ids(size / 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t v;
    std::memcpy(&v, data + 4 * i, 4);
    // Mostly real ids (so multi-byte characters get assembled), some arbitrary.
    if (in_range) v = static_cast<int32_t>(static_cast<uint32_t>(v) % static_cast<uint32_t>(vocab));
    ids[i] = v;
  }
  return ids;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Tokenizer& tok = tokenizer(data[0] & 1);
  const int mode = (data[0] >> 1) & 3;
  ++data;
  --size;
  if (mode == 0) {  // encode arbitrary bytes
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const bool bos = size % 2 == 0;
    const std::vector<int32_t> ids = tok.encode(text, bos);
    for (int32_t id : ids) FUZZ_CHECK(tok.is_valid_id(id));
    if (bos) FUZZ_CHECK(!ids.empty() && ids[0] == tok.bos_id());
    const std::string back = tok.decode(ids);
    if (back != text) {
      std::fprintf(stderr, "round trip: %zu bytes in, %zu bytes back\n", text.size(), back.size());
      FUZZ_CHECK(back == text);
    }
    return 0;
  }
  // Modes 1-3: ids. Mode 3 also feeds out-of-range and negative ids.
  const std::vector<int32_t> ids = ids_of(data, size, tok.vocab_size(), mode != 3);
  if (mode == 1) {
    for (int32_t id : ids) {
      (void)tok.decode_piece(id);
      (void)tok.token_text(id);
    }
    (void)tok.decode(ids);
    return 0;
  }
  const int32_t prev = ids.empty() ? -1 : ids[0];
  StreamingDetokenizer detok(tok, prev);
  std::string all, raw;
  int32_t last = prev;
  for (size_t i = 1; i < ids.size(); ++i) {
    std::string_view piece = tok.decode_piece(ids[i]);
    if (last == tok.bos_id() && tok.adds_dummy_prefix() && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
    raw.append(piece);
    last = ids[i];
    const std::string delta = detok.push(ids[i]);
    FUZZ_CHECK(fuzz::valid_utf8(delta));
    FUZZ_CHECK(detok.pending_bytes() <= 3);
    all += delta;
  }
  const std::string tail = detok.flush();
  FUZZ_CHECK(fuzz::valid_utf8(tail));
  FUZZ_CHECK(detok.pending_bytes() == 0);
  all += tail;
  if (fuzz::valid_utf8(raw)) FUZZ_CHECK(all == raw);
  return 0;
}
