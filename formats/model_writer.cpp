#include "formats/model_writer.h"

#include <omp.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>

#include "formats/llama2c_reader.h"

namespace pagoda {

namespace {

// splitmix64: expands seeds into well-mixed xoshiro states.
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// xoshiro256+ (Blackman & Vigna): fast, good enough for the top 24 bits we use.
class Xoshiro256 {
 public:
  Xoshiro256(uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    for (auto& s : s_) s = splitmix64(x);
  }
  uint64_t next() {
    const uint64_t result = s_[0] + s_[3];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = (s_[3] << 45) | (s_[3] >> 19);
    return result;
  }

 private:
  uint64_t s_[4];
};

constexpr int64_t kChunk = 1 << 16;  // values per independent RNG stream

// Box-Muller on one RNG: fills n values (n even or odd).
void normal_chunk(uint64_t seed, uint64_t stream, float stddev, float* out, int64_t n) {
  Xoshiro256 rng(seed, stream);
  constexpr float kTwoPi = 6.283185307179586f;
  constexpr float kInv24 = 1.0f / 16777216.0f;
  for (int64_t i = 0; i < n; i += 2) {
    const uint64_t bits = rng.next();
    // Two 24-bit uniforms: u1 in (0, 1], u2 in [0, 1).
    const float u1 = (static_cast<float>(bits >> 40) + 1.0f) * kInv24;
    const float u2 = static_cast<float>((bits >> 16) & 0xffffff) * kInv24;
    const float r = stddev * std::sqrt(-2.0f * std::log(u1));
    const float a = kTwoPi * u2;
    out[i] = r * std::cos(a);
    if (i + 1 < n) out[i + 1] = r * std::sin(a);
  }
}

class FileWriter {
 public:
  explicit FileWriter(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {}
  ~FileWriter() {
    if (f_ != nullptr) std::fclose(f_);
  }
  bool opened() const { return f_ != nullptr; }
  bool write(const void* p, size_t bytes) {
    if (ok_ && std::fwrite(p, 1, bytes, f_) != bytes) ok_ = false;
    return ok_;
  }
  bool close() {
    const bool closed = std::fclose(f_) == 0;
    f_ = nullptr;
    return ok_ && closed;
  }

 private:
  std::string path_;
  FILE* f_;
  bool ok_ = true;
};

}  // namespace

const std::vector<std::string>& model_preset_names() {
  static const std::vector<std::string> names = {"tiny", "bench-200m", "tinyllama-1.1b"};
  return names;
}

Result<ModelConfig> model_preset(const std::string& name) {
  ModelConfig c;
  c.tied_classifier = false;
  if (name == "tiny") {
    c.dim = 64, c.hidden_dim = 192, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2;
    c.vocab_size = 512, c.max_seq_len = 256;
  } else if (name == "bench-200m") {
    c.dim = 1024, c.hidden_dim = 2816, c.n_layers = 12, c.n_heads = 16, c.n_kv_heads = 4;
    c.vocab_size = 32000, c.max_seq_len = 2048;
  } else if (name == "tinyllama-1.1b") {
    c.dim = 2048, c.hidden_dim = 5632, c.n_layers = 22, c.n_heads = 32, c.n_kv_heads = 4;
    c.vocab_size = 32000, c.max_seq_len = 2048;
  } else {
    std::string allowed;
    for (const auto& n : model_preset_names()) allowed += (allowed.empty() ? "" : ", ") + n;
    return Status::invalid_argument("model preset '" + name + "' is not known; allowed: " + allowed);
  }
  c.head_dim = c.dim / c.n_heads;
  PAGODA_RETURN_IF_ERROR(c.validate());
  return c;
}

void fill_normal(uint64_t seed, uint64_t stream, float stddev, float* out, int64_t n) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    const int64_t len = std::min(kChunk, n - begin);
    normal_chunk(seed, (stream << 32) + static_cast<uint64_t>(c), stddev, out + begin, len);
  }
}

Status write_random_llama2c(const ModelConfig& config, const std::string& path, uint64_t seed, float stddev) {
  PAGODA_RETURN_IF_ERROR(config.validate());
  if (!(stddev >= 0.0f) || !std::isfinite(stddev)) {
    return Status::invalid_argument("write_random_llama2c: stddev must be finite and >= 0");
  }
  const std::string tmp = path + ".part";
  FileWriter out(tmp);
  if (!out.opened()) {
    return Status::invalid_argument(tmp + ": cannot create: " + std::strerror(errno));
  }
  const Llama2cHeader header = llama2c_header_from_config(config);
  out.write(&header, sizeof(header));

  // Streams each tensor through two buffers: one is written by a helper
  // thread while the other is filled. Tensor t uses RNG streams (t, *).
  constexpr int64_t kBuffer = 64 * kChunk;
  std::vector<float> bufs[2] = {std::vector<float>(kBuffer), std::vector<float>(kBuffer)};
  int next = 0;
  std::future<void> pending;
  auto flush = [&] {
    if (pending.valid()) pending.get();
  };
  uint64_t tensor = 0;
  auto random = [&](int64_t n) {
    ++tensor;
    for (int64_t done = 0; done < n; done += kBuffer) {
      const int64_t len = std::min(kBuffer, n - done);
      std::vector<float>& buf = bufs[next];
      next ^= 1;
      // Stream ids stay unique per (tensor, chunk) since kBuffer % kChunk == 0.
      fill_normal(seed, (tensor << 20) + static_cast<uint64_t>(done / kChunk), stddev, buf.data(), len);
      flush();  // the other buffer's write, before reusing the file
      pending = std::async(std::launch::async,
                           [&out, &buf, len] { out.write(buf.data(), static_cast<size_t>(len) * sizeof(float)); });
    }
  };
  auto ones = [&](int64_t n) {
    flush();
    std::vector<float> v(static_cast<size_t>(n), 1.0f);
    out.write(v.data(), v.size() * sizeof(float));
  };
  const int64_t L = config.n_layers, dim = config.dim, hidden = config.hidden_dim;
  const int64_t q = config.q_dim(), kv = config.kv_dim();
  random(config.vocab_size * dim);  // token_embedding
  ones(L * dim);                    // rms_att
  random(L * q * dim);              // wq
  random(L * kv * dim);             // wk
  random(L * kv * dim);             // wv
  random(L * dim * q);              // wo
  ones(L * dim);                    // rms_ffn
  random(L * hidden * dim);         // w1
  random(L * dim * hidden);         // w2
  random(L * hidden * dim);         // w3
  ones(dim);                        // rms_final
  // Legacy RoPE tables as llama2.c's export wrote them (readers skip them).
  const int64_t half = config.head_dim / 2;
  std::vector<float> re(static_cast<size_t>(config.max_seq_len * half));
  std::vector<float> im(re.size());
  for (int64_t pos = 0; pos < config.max_seq_len; ++pos) {
    for (int64_t i = 0; i < half; ++i) {
      const float freq = 1.0f / std::pow(config.rope_theta, static_cast<float>(2 * i) / config.head_dim);
      const float a = static_cast<float>(pos) * freq;
      re[pos * half + i] = std::cos(a);
      im[pos * half + i] = std::sin(a);
    }
  }
  flush();
  out.write(re.data(), re.size() * sizeof(float));
  out.write(im.data(), im.size() * sizeof(float));
  if (!config.tied_classifier) random(config.vocab_size * dim);  // classifier
  flush();
  if (!out.close()) {
    std::remove(tmp.c_str());
    return Status::resource_exhausted(tmp + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return Status::invalid_argument(path + ": cannot rename from " + tmp + ": " + err);
  }
  return Status::ok();
}

}  // namespace pagoda
