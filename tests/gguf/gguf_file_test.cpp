// The GGUF container and the ggml types: the files llama.cpp made (in
// ../shared/gguf) parse with the metadata and tensor types llama.cpp wrote;
// a file GgufWriter builds reads back key for key; every kind of damage
// (truncation at every length, bad magic, version 1, big-endian, absurd
// counts, dimensions and offsets, unknown types, a tensor past the end) is a
// clear error; F16 converts exactly; each quantized type dequantizes to
// scale * quant (- min) for blocks packed here from chosen quants, scales
// and mins, and the reference quantizers round-trip within their step.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "gguf/ggml_types.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

using namespace pagoda;

namespace {

std::string shared_gguf(const std::string& name) {
  const std::string path = std::string(PAGODA_SOURCE_DIR) + "/../shared/gguf/" + name;
  if (!std::filesystem::exists(path)) FAIL("test data " << path << " not found (../shared beside the repository)");
  return path;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A small valid file: a few keys of each kind and two tensors.
GgufWriter small_writer() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_uint32("llama.block_count", 2);
  w.add_int32("test.negative", -7);
  w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_strings("tokenizer.ggml.tokens", {"<unk>", "a", "bc"});
  w.add_float32s("tokenizer.ggml.scores", {0.0f, -1.5f, -2.5f});
  w.add_int32s("tokenizer.ggml.token_type", {2, 1, 1});
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.25f - 3.0f;
  w.add_tensor("a.weight", {32, 2}, GgmlType::kF32, ggml_quantize(GgmlType::kF32, x.data(), 64));
  w.add_tensor("b.weight", {64}, GgmlType::kQ8_0, ggml_quantize(GgmlType::kQ8_0, x.data(), 64));
  return w;
}

Status parse_status(const std::vector<uint8_t>& bytes) {
  auto f = GgufFile::parse(bytes, "test.gguf");
  return f ? Status::ok() : f.status();
}

void put_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); }
void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }

// Offset of the first occurrence of `s` in `b`.
size_t find_bytes(const std::vector<uint8_t>& b, const std::string& s) {
  const auto it = std::search(b.begin(), b.end(), s.begin(), s.end());
  REQUIRE(it != b.end());
  return static_cast<size_t>(it - b.begin());
}

uint16_t f16_bits(float f) {
  const std::vector<uint8_t> b = ggml_quantize(GgmlType::kF16, &f, 1);
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}

void append_f16(std::vector<uint8_t>& b, float f) {
  const uint16_t h = f16_bits(f);
  b.push_back(static_cast<uint8_t>(h & 0xFF));
  b.push_back(static_cast<uint8_t>(h >> 8));
}

std::vector<float> dequantize(GgmlType t, const std::vector<uint8_t>& block, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  ggml_dequantize(t, block.data(), n, y.data());
  return y;
}

}  // namespace

TEST_CASE("gguf: llama.cpp's files parse with their metadata and tensor types", "[gguf]") {
  auto f = GgufFile::open(shared_gguf("stories260K-q4_k_m.gguf"));
  REQUIRE(f.is_ok());
  const GgufFile& g = **f;
  CHECK(g.version() == 3);
  CHECK(g.alignment() == 32);
  CHECK(*g.get_string("general.architecture").value() == "llama");
  CHECK(*g.get_int("llama.embedding_length").value() == 64);
  CHECK(*g.get_int("llama.attention.head_count_kv").value() == 4);
  CHECK(std::fabs(*g.get_float("llama.attention.layer_norm_rms_epsilon").value() - 1e-5) < 1e-12);
  CHECK(g.get_strings("tokenizer.ggml.tokens").value()->size() == 512);
  CHECK(g.get_floats("tokenizer.ggml.scores").value()->size() == 512);
  CHECK(g.get_ints("tokenizer.ggml.token_type").value()->size() == 512);
  CHECK(g.tensors().size() == 3 + 9 * 5);
  // llama.cpp mixes types per tensor in its "Q4_K_M" for these tiny shapes.
  std::set<std::string> types;
  for (const GgufTensorInfo& t : g.tensors()) types.insert(ggml_type_name(static_cast<uint32_t>(t.type)));
  CHECK(types == std::set<std::string>{"f16", "f32", "q5_0", "q8_0"});
  const GgufTensorInfo* emb = g.find_tensor("token_embd.weight");
  REQUIRE(emb != nullptr);
  CHECK(emb->dims == std::vector<int64_t>{64, 512});
  CHECK(emb->bytes == 512 * 2 * 22);
  // A key of another type is an error naming it; a missing key is nullopt.
  auto wrong = g.get_string("llama.block_count");
  REQUIRE(!wrong.is_ok());
  CHECK(contains(wrong.status().message(), "'llama.block_count' is uint32, expected a string"));
  CHECK(!g.get_int("no.such.key").value().has_value());

  auto q6 = GgufFile::open(shared_gguf("stories260K-q6_k.gguf"));
  REQUIRE(q6.is_ok());
  // Rows of 64 and 172 are not multiples of the K types' 256: llama.cpp fell
  // back for every tensor (the K types are tested on blocks packed below).
  types.clear();
  for (const GgufTensorInfo& t : (*q6)->tensors()) types.insert(ggml_type_name(static_cast<uint32_t>(t.type)));
  CHECK(types == std::set<std::string>{"f16", "f32", "q8_0"});
  CHECK(is_gguf_file(shared_gguf("stories260K-f32.gguf")));
  CHECK(!is_gguf_file(std::string(PAGODA_SOURCE_DIR) + "/README.md"));
}

TEST_CASE("gguf: a file GgufWriter builds reads back key for key and tensor for tensor", "[gguf]") {
  const std::vector<uint8_t> bytes = small_writer().bytes();
  auto f = GgufFile::parse(bytes, "small.gguf");
  REQUIRE(f.is_ok());
  const GgufFile& g = **f;
  CHECK(*g.get_int("llama.block_count").value() == 2);
  CHECK(*g.get_int("test.negative").value() == -7);
  CHECK(std::fabs(*g.get_float("llama.attention.layer_norm_rms_epsilon").value() - 1e-6) < 1e-12);
  CHECK(*g.get_bool("tokenizer.ggml.add_bos_token").value());
  CHECK(*g.get_strings("tokenizer.ggml.tokens").value() == std::vector<std::string>{"<unk>", "a", "bc"});
  CHECK(*g.get_floats("tokenizer.ggml.scores").value() == std::vector<double>{0.0, -1.5, -2.5});
  CHECK(*g.get_ints("tokenizer.ggml.token_type").value() == std::vector<int64_t>{2, 1, 1});
  const GgufTensorInfo* a = g.find_tensor("a.weight");
  const GgufTensorInfo* b = g.find_tensor("b.weight");
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(a->dims == std::vector<int64_t>{32, 2});
  CHECK(reinterpret_cast<uintptr_t>(a->data) % 4 == 0);
  CHECK(b->bytes == 2 * 34);
  std::vector<float> back(64);
  ggml_dequantize(GgmlType::kQ8_0, b->data, 64, back.data());
  const auto* exact = reinterpret_cast<const float*>(a->data);
  for (int i = 0; i < 64; ++i) CHECK(std::fabs(back[size_t(i)] - exact[i]) <= 13.0f / 127 / 2 * 1.001f);
}

TEST_CASE("gguf: every kind of damage is a clear error, never a crash", "[gguf]") {
  const std::vector<uint8_t> good = small_writer().bytes();
  REQUIRE(parse_status(good).is_ok());

  SECTION("truncated at every length") {
    // The last tensor (68 bytes of q8_0) is padded to 96: cutting only padding leaves a whole file.
    const size_t whole = good.size() - 28;
    CHECK(parse_status(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(whole))).is_ok());
    for (size_t n = 0; n < whole; ++n) {
      const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<long>(n));
      const Status st = parse_status(cut);
      INFO("length " << n);
      REQUIRE(!st.is_ok());
      CHECK(st.code() == StatusCode::kDataLoss);
    }
  }
  SECTION("bad magic, version 1, big-endian, an unknown version") {
    std::vector<uint8_t> b = good;
    b[0] = 'X';
    CHECK(contains(parse_status(b).message(), "not a GGUF file"));
    b = good;
    put_u32(b, 4, 1);
    CHECK(contains(parse_status(b).message(), "version 1"));
    put_u32(b, 4, 0x03000000);
    CHECK(contains(parse_status(b).message(), "big-endian"));
    put_u32(b, 4, 7);
    CHECK(contains(parse_status(b).message(), "version 7"));
  }
  SECTION("absurd counts are refused before anything is allocated") {
    std::vector<uint8_t> b = good;
    put_u64(b, 8, uint64_t{1} << 60);  // tensors
    CHECK(contains(parse_status(b).message(), "tensor infos"));
    b = good;
    put_u64(b, 16, uint64_t{1} << 62);  // key/values
    CHECK(contains(parse_status(b).message(), "metadata key/values"));
    b = good;  // a string array of 2^60 elements
    const size_t tokens = find_bytes(b, "tokenizer.ggml.tokens") + std::string("tokenizer.ggml.tokens").size();
    put_u64(b, tokens + 8, uint64_t{1} << 60);
    CHECK(contains(parse_status(b).message(), "an array of 1152921504606846976 elements"));
    b = good;  // a string longer than the file
    put_u64(b, find_bytes(b, "general.architecture") - 8, uint64_t{1} << 40);
    CHECK(parse_status(b).code() == StatusCode::kDataLoss);
  }
  SECTION("tensor infos: dimensions, types, offsets") {
    const size_t info = find_bytes(good, "b.weight") + 8;  // n_dims, then dims
    std::vector<uint8_t> b = good;
    put_u32(b, info, 9);
    CHECK(contains(parse_status(b).message(), "has 9 dimensions"));
    b = good;
    put_u64(b, info + 4, uint64_t{1} << 62);
    CHECK(contains(parse_status(b).message(), "absurd dimension"));
    b = good;
    put_u64(b, info + 4, 48);  // not a multiple of q8_0's block of 32
    CHECK(contains(parse_status(b).message(), "not a multiple of q8_0's block of 32"));
    b = good;
    put_u32(b, info + 12, 99);  // the type
    CHECK(contains(parse_status(b).message(), "tensor type 99"));
    b = good;
    put_u64(b, info + 16, 1 << 20);  // the offset: past the end
    CHECK(contains(parse_status(b).message(), "lies past the end of the file"));
    b = good;
    put_u64(b, info + 16, 33);  // misaligned
    CHECK(contains(parse_status(b).message(), "not a multiple of the alignment 32"));
  }
  SECTION("a key twice, a tensor twice, a bad alignment") {
    GgufWriter w = small_writer();
    w.add_uint32("llama.block_count", 3);
    CHECK(contains(parse_status(w.bytes()).message(), "'llama.block_count' appears twice"));
    GgufWriter t = small_writer();
    t.add_tensor("a.weight", {32}, GgmlType::kF32, std::vector<uint8_t>(128));
    CHECK(contains(parse_status(t.bytes()).message(), "tensor 'a.weight' appears twice"));
    GgufWriter a = small_writer();
    a.add_uint32("general.alignment", 24);
    CHECK(contains(parse_status(a.bytes()).message(), "power of two"));
    GgufWriter two = small_writer();  // f32 tensors would not be float-aligned
    two.add_uint32("general.alignment", 2);
    CHECK(contains(parse_status(two.bytes()).message(), "power of two from 8"));
  }
  SECTION("a metadata array longer than pagoda reads") {
    // 2^24 + 1 bools in a file that holds them: refused before widening.
    GgufWriter w;
    std::vector<uint8_t> b = w.bytes();
    std::vector<uint8_t> kv;
    const std::string key = "huge";
    const uint64_t n = (uint64_t{1} << 24) + 1;
    auto put = [&](const void* p, size_t len) { kv.insert(kv.end(), (const uint8_t*)p, (const uint8_t*)p + len); };
    const uint64_t klen = key.size();
    const uint32_t array = 9, boolean = 7;
    put(&klen, 8);
    put(key.data(), key.size());
    put(&array, 4);
    put(&boolean, 4);
    put(&n, 8);
    kv.resize(kv.size() + n, 1);
    put_u64(b, 16, 1);  // one key/value
    b.insert(b.begin() + 24, kv.begin(), kv.end());
    CHECK(contains(parse_status(b).message(), "more than pagoda reads"));
  }
  SECTION("random byte damage never crashes") {
    std::mt19937 rng(7);
    for (int i = 0; i < 2000; ++i) {
      std::vector<uint8_t> b = good;
      for (int k = 0; k < 4; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
      (void)parse_status(b);
    }
  }
}

TEST_CASE("ggml: f16 and bf16 convert exactly, and f32 -> f16 rounds to nearest even", "[gguf]") {
  // Against the safetensors converter (tested against the textbook formula).
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto u = static_cast<uint16_t>(h);
    float want = 0;
    f16_to_f32_n(&u, 1, &want);
    const float got = ggml_f16_to_f32(u);
    if (std::isnan(want)) {
      CHECK(std::isnan(got));
      continue;
    }
    uint32_t a, b;
    std::memcpy(&a, &got, 4);
    std::memcpy(&b, &want, 4);
    REQUIRE(a == b);
    REQUIRE(f16_bits(got) == u);  // every half survives f32 and back
  }
  CHECK(ggml_bf16_to_f32(0x3F80) == 1.0f);
  CHECK(f16_bits(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);      // tie -> even (down)
  CHECK(f16_bits(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);  // tie -> even (up)
  CHECK(f16_bits(65520.0f) == 0x7C00);                          // rounds to infinity
  CHECK(f16_bits(65519.0f) == 0x7BFF);
  CHECK(f16_bits(std::ldexp(1.0f, -25)) == 0x0000);  // half the smallest subnormal: tie -> 0
  CHECK(f16_bits(std::ldexp(3.0f, -25)) == 0x0002);
}

TEST_CASE("ggml: legacy quants dequantize to d * q (+ m) from blocks packed here", "[gguf]") {
  std::mt19937 rng(11);
  const float d = 0.375f, m = -1.25f;  // exact in f16
  int q[32];
  SECTION("q4_0 and q4_1") {
    for (int& v : q) v = static_cast<int>(rng() % 16);
    std::vector<uint8_t> b0, b1;
    append_f16(b0, d);
    append_f16(b1, d);
    append_f16(b1, m);
    for (int j = 0; j < 16; ++j) {
      b0.push_back(static_cast<uint8_t>(q[j] | (q[j + 16] << 4)));
      b1.push_back(static_cast<uint8_t>(q[j] | (q[j + 16] << 4)));
    }
    const auto y0 = dequantize(GgmlType::kQ4_0, b0, 32);
    const auto y1 = dequantize(GgmlType::kQ4_1, b1, 32);
    for (int j = 0; j < 32; ++j) {
      CHECK(y0[size_t(j)] == d * float(q[j] - 8));
      CHECK(y1[size_t(j)] == d * float(q[j]) + m);
    }
  }
  SECTION("q5_0 and q5_1: the fifth bit of element j is bit j of qh") {
    for (int& v : q) v = static_cast<int>(rng() % 32);
    uint32_t qh = 0;
    for (int j = 0; j < 32; ++j) qh |= static_cast<uint32_t>(q[j] >> 4) << j;
    std::vector<uint8_t> b0, b1;
    append_f16(b0, d);
    append_f16(b1, d);
    append_f16(b1, m);
    for (int k = 0; k < 4; ++k) {
      b0.push_back(static_cast<uint8_t>(qh >> (8 * k)));
      b1.push_back(static_cast<uint8_t>(qh >> (8 * k)));
    }
    for (int j = 0; j < 16; ++j) {
      b0.push_back(static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4)));
      b1.push_back(static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4)));
    }
    const auto y0 = dequantize(GgmlType::kQ5_0, b0, 32);
    const auto y1 = dequantize(GgmlType::kQ5_1, b1, 32);
    for (int j = 0; j < 32; ++j) {
      CHECK(y0[size_t(j)] == d * float(q[j] - 16));
      CHECK(y1[size_t(j)] == d * float(q[j]) + m);
    }
  }
  SECTION("the reference quantizers of q8_0 and q4_0 round-trip within their step") {
    std::vector<float> x(256);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (float& v : x) v = dist(rng);
    for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0}) {
      const auto y = dequantize(t, ggml_quantize(t, x.data(), 256), 256);
      for (int b = 0; b < 8; ++b) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(b * 32 + j)]));
        // q4_0 spans [-8d, 7d] with d = -max/8: the opposite extreme clamps, a whole step off.
        const float bound = t == GgmlType::kQ8_0 ? amax / 127 * 0.51f : amax / 8 * 1.01f;
        for (int j = 0; j < 32; ++j) CHECK(std::fabs(y[size_t(b * 32 + j)] - x[size_t(b * 32 + j)]) <= bound);
      }
    }
  }
}

TEST_CASE("ggml: k-quants dequantize to d * scale * q - dmin * min from super-blocks packed here", "[gguf]") {
  std::mt19937 rng(5);
  const float d = 0.0625f, dmin = 0.125f;
  SECTION("q4_K and q5_K: eight sub-blocks of 32 with 6-bit scales and mins") {
    for (const bool five : {false, true}) {
      int sc[8], mn[8], q[256];
      for (int i = 0; i < 8; ++i) {
        sc[i] = static_cast<int>(rng() % 64);
        mn[i] = static_cast<int>(rng() % 64);
      }
      for (int& v : q) v = static_cast<int>(rng() % (five ? 32 : 16));
      // The 12 scale bytes: sub-blocks 0-3 in the low 6 bits of bytes 0-3
      // (scale) and 4-7 (min); 4-7 in the nibbles of bytes 8-11, their top
      // two bits in the high bits of bytes 0-7.
      uint8_t s[12] = {};
      for (int j = 0; j < 4; ++j) {
        s[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
        s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
      }
      std::vector<uint8_t> b;
      append_f16(b, d);
      append_f16(b, dmin);
      b.insert(b.end(), s, s + 12);
      if (five) {  // qh: bit 2c of byte l is element 64c + l's fifth bit, bit 2c+1 element 64c + 32 + l's
        for (int l = 0; l < 32; ++l) {
          uint8_t h = 0;
          for (int c = 0; c < 4; ++c)
            h |= static_cast<uint8_t>(((q[64 * c + l] >> 4) << (2 * c)) | ((q[64 * c + 32 + l] >> 4) << (2 * c + 1)));
          b.push_back(h);
        }
      }
      for (int c = 0; c < 4; ++c)  // chunk c of 64: low nibbles the first 32, high nibbles the next 32
        for (int l = 0; l < 32; ++l)
          b.push_back(static_cast<uint8_t>((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4)));
      REQUIRE(b.size() == (five ? 176u : 144u));
      const auto y = dequantize(five ? GgmlType::kQ5_K : GgmlType::kQ4_K, b, 256);
      for (int i = 0; i < 256; ++i) {
        const int sub = i / 32;
        INFO((five ? "q5_K" : "q4_K") << " element " << i);
        CHECK(y[size_t(i)] == d * float(sc[sub]) * float(q[i]) - dmin * float(mn[sub]));
      }
    }
  }
  SECTION("q6_K: sixteen sub-blocks of 16 with int8 scales") {
    int q[256];
    int8_t sc[16];
    for (int& v : q) v = static_cast<int>(rng() % 64);
    for (int8_t& v : sc) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
    uint8_t ql[128] = {}, qh[64] = {};
    // Half h of 128: ql[64h + l] holds elements 128h + l (low nibble) and
    // 128h + 64 + l (high), ql[64h + 32 + l] elements +32 and +96; qh[32h + l]
    // the top two bits of the four.
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const int* e = q + 128 * h;
        ql[64 * h + l] = static_cast<uint8_t>((e[l] & 15) | ((e[l + 64] & 15) << 4));
        ql[64 * h + 32 + l] = static_cast<uint8_t>((e[l + 32] & 15) | ((e[l + 96] & 15) << 4));
        qh[32 * h + l] = static_cast<uint8_t>((e[l] >> 4) | ((e[l + 32] >> 4) << 2) | ((e[l + 64] >> 4) << 4) |
                                              ((e[l + 96] >> 4) << 6));
      }
    std::vector<uint8_t> b(ql, ql + 128);
    b.insert(b.end(), qh, qh + 64);
    for (int8_t v : sc) b.push_back(static_cast<uint8_t>(v));
    append_f16(b, d);
    REQUIRE(b.size() == 210u);
    const auto y = dequantize(GgmlType::kQ6_K, b, 256);
    for (int i = 0; i < 256; ++i) CHECK(y[size_t(i)] == d * float(sc[i / 16]) * float(q[i] - 32));
  }
  SECTION("q2_K: sixteen sub-blocks of 16 with 4-bit scales and mins") {
    int q[256], sc[16], mn[16];
    for (int& v : q) v = static_cast<int>(rng() % 4);
    for (int i = 0; i < 16; ++i) {
      sc[i] = static_cast<int>(rng() % 16);
      mn[i] = static_cast<int>(rng() % 16);
    }
    std::vector<uint8_t> b;
    for (int i = 0; i < 16; ++i) b.push_back(static_cast<uint8_t>(sc[i] | (mn[i] << 4)));
    // Half h of 128: byte 32h + l holds elements 128h + 32s + l in bits 2s..2s+1.
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        uint8_t v = 0;
        for (int s = 0; s < 4; ++s) v |= static_cast<uint8_t>(q[128 * h + 32 * s + l] << (2 * s));
        b.push_back(v);
      }
    append_f16(b, d);
    append_f16(b, dmin);
    REQUIRE(b.size() == 84u);
    const auto y = dequantize(GgmlType::kQ2_K, b, 256);
    for (int i = 0; i < 256; ++i) CHECK(y[size_t(i)] == d * float(sc[i / 16]) * float(q[i]) - dmin * float(mn[i / 16]));
  }
}

TEST_CASE("ggml: q4_0, q4_1 and q4_K groups give scale * q + min equal to the dequantized weights bit for bit",
          "[gguf]") {
  std::mt19937 rng(3);
  for (const GgmlType t : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ4_K}) {
    const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(t));
    const int64_t n = 512;
    std::vector<uint8_t> row(static_cast<size_t>(n / info->block_elements * info->block_bytes));
    for (uint8_t& b : row) b = static_cast<uint8_t>(rng());
    // Finite, moderate f16 scales: bytes of the d / dmin fields below 0x3C00 (1.0).
    for (size_t blk = 0; blk < row.size(); blk += static_cast<size_t>(info->block_bytes))
      for (size_t f = 0; f < (t == GgmlType::kQ4_0 ? 1u : 2u); ++f) row[blk + 2 * f + 1] &= 0x3B;
    const std::vector<float> y = dequantize(t, row, n);
    for (int64_t g = 0; g < n / 32; ++g) {
      uint8_t q[32];
      float scale = 0, min = 0;
      REQUIRE(ggml_q4_group(t, row.data(), g, q, &scale, &min));
      for (int i = 0; i < 32; ++i) {
        INFO(ggml_type_name(static_cast<uint32_t>(t)) << " group " << g << " element " << i);
        REQUIRE(q[i] <= 15);
        REQUIRE(scale * float(q[i]) + min == y[size_t(g * 32 + i)]);
      }
    }
  }
  uint8_t q[32];
  float s, m;
  CHECK_FALSE(ggml_q4_group(GgmlType::kQ8_0, nullptr, 0, q, &s, &m));
}
