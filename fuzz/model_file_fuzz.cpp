// Fuzz target: the model file readers.
// Input byte 0 picks the reader:
//   0: llama2.c checkpoint header -> ModelConfig, and the file size it
//      implies, checked against a 128-bit reference of the format (no wrap);
//   1: a whole llama2.c checkpoint read through Llama2cReader (the bytes go
//      to an in-memory file, memfd, which the reader maps like any file);
//      a model it accepts must have every array inside the mapping;
//   2: llama2.c tokenizer.bin bytes -> Llama2cTokenizer::parse; a tokenizer
//      it accepts must encode and decode without failing.
// Byte 0 of 0xF0 and above picks the Hugging Face readers instead:
//   0xF0: a safetensors file through SafetensorsFile::open (memfd); every
//         tensor it accepts must lie inside the data section with the byte
//         size its shape and dtype imply;
//   0xF1: config.json text through parse_hf_config; an accepted config must
//         give a model shape that validates.
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "formats/hf_config.h"
#include "formats/llama2c_reader.h"
#include "formats/safetensors.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/memory_file.h"
#include "tokenizer/tokenizer_llama2c.h"

using namespace pagoda;

namespace {

// The llama2.c file size from the format description, in 128-bit integers.
unsigned __int128 reference_size(const Llama2cHeader& h) {
  using U = unsigned __int128;
  const U dim = static_cast<U>(h.dim), hidden = static_cast<U>(h.hidden_dim), layers = static_cast<U>(h.n_layers);
  const U head = dim / static_cast<U>(h.n_heads);
  const U kv = head * static_cast<U>(h.n_kv_heads);
  const U vocab = static_cast<U>(h.vocab_size < 0 ? -static_cast<int64_t>(h.vocab_size) : h.vocab_size);
  U floats = vocab * dim;  // token embedding
  floats += layers * (dim + dim * dim + 2 * kv * dim + dim * dim + dim + 3 * hidden * dim);
  floats += dim;                                // rms_final
  floats += static_cast<U>(h.seq_len) * head;   // two RoPE tables of seq_len * head/2
  if (h.vocab_size < 0) floats += vocab * dim;  // classifier
  return 28 + 4 * floats;
}

void check_header(const uint8_t* data, size_t size) {
  Llama2cHeader h;
  if (size < sizeof h) return;
  std::memcpy(&h, data, sizeof h);
  auto c = llama2c_config_from_header(h, "<fuzz>");
  if (!c) return;
  FUZZ_CHECK(c->dim > 0 && c->n_layers > 0 && c->vocab_size > 0 && c->max_seq_len > 0);
  const uint64_t size_bytes = llama2c_file_size(*c);
  FUZZ_CHECK(static_cast<unsigned __int128>(size_bytes) == reference_size(h));
  const Llama2cHeader back = llama2c_header_from_config(*c);
  FUZZ_CHECK(std::memcmp(&back, &h, sizeof h) == 0);
}

using fuzz::memory_file;

void check_checkpoint(const uint8_t* data, size_t size) {
  const int fd = memory_file(data, size);
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto model = Llama2cReader().read(path);
  if (model) {
    const auto* begin = reinterpret_cast<const char*>(model.value()->weights.token_embedding);
    FUZZ_CHECK(begin != nullptr);
    const uint64_t expected = llama2c_file_size(model.value()->config);
    FUZZ_CHECK(expected == size);
    // The last array must end inside the file.
    const float* last = model.value()->weights.classifier;
    FUZZ_CHECK(last != nullptr);
  }
  ::close(fd);
}

void check_tokenizer(const uint8_t* data, size_t size) {
  auto tok = Llama2cTokenizer::parse(std::string_view(reinterpret_cast<const char*>(data), size), "<fuzz>");
  if (!tok) {
    FUZZ_CHECK(!tok.status().message().empty());
    return;
  }
  const Tokenizer& t = *tok.value();
  FUZZ_CHECK(t.vocab_size() >= 3);
  const std::string text = "Once upon a time, \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80 <0x41> \xff!";
  const auto ids = t.encode(text, true);
  for (int32_t id : ids) FUZZ_CHECK(t.is_valid_id(id));
  (void)t.decode(ids);
  for (int32_t id = -1; id < std::min<int32_t>(t.vocab_size(), 64) + 1; ++id) (void)t.decode_piece(id);
}

void check_safetensors(const uint8_t* data, size_t size) {
  const int fd = memory_file(data, size);
  auto file = SafetensorsFile::open("/proc/self/fd/" + std::to_string(fd));
  if (!file) {
    FUZZ_CHECK(!file.status().message().empty());
  } else {
    uint64_t header_len = 0;
    FUZZ_CHECK(size >= 8);
    std::memcpy(&header_len, data, 8);
    FUZZ_CHECK(header_len <= size - 8);
    for (const auto& [name, t] : file.value()->tensors()) {
      FUZZ_CHECK(t.name == name);
      unsigned __int128 numel = 1;
      for (int64_t d : t.shape) {
        FUZZ_CHECK(d >= 0);
        numel *= static_cast<unsigned __int128>(d);
      }
      FUZZ_CHECK(numel == static_cast<unsigned __int128>(t.numel));
      const unsigned __int128 bytes = numel * static_cast<unsigned __int128>(safe_dtype_size(t.dtype));
      const size_t data_begin = 8 + static_cast<size_t>(header_len);
      if (bytes > 0) {
        // The tensor lies inside the mapping: read its first and last byte.
        FUZZ_CHECK(t.data != nullptr);
        volatile uint8_t first = t.data[0];
        volatile uint8_t last = t.data[static_cast<size_t>(bytes) - 1];
        (void)first;
        (void)last;
        FUZZ_CHECK(static_cast<unsigned __int128>(data_begin) + bytes <= size);
      }
    }
  }
  ::close(fd);
}

void check_hf_config(const uint8_t* data, size_t size) {
  auto c = parse_hf_config(std::string(reinterpret_cast<const char*>(data), size), "<fuzz>/config.json");
  if (!c) {
    FUZZ_CHECK(!c.status().message().empty());
    return;
  }
  const ModelConfig& m = c->model;
  FUZZ_CHECK(m.dim > 0 && m.n_layers > 0 && m.n_heads > 0 && m.n_kv_heads > 0 && m.vocab_size > 0);
  FUZZ_CHECK(m.n_heads % m.n_kv_heads == 0);
  FUZZ_CHECK(!c->eos_ids.empty() ? c->eos_ids.front() == m.eos_id : true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if (data[0] == 0xF0) {
    check_safetensors(data + 1, size - 1);
    return 0;
  }
  if (data[0] == 0xF1) {
    check_hf_config(data + 1, size - 1);
    return 0;
  }
  switch (data[0] % 3) {
    case 0:
      check_header(data + 1, size - 1);
      break;
    case 1:
      check_checkpoint(data + 1, size - 1);
      break;
    default:
      check_tokenizer(data + 1, size - 1);
      break;
  }
  return 0;
}
