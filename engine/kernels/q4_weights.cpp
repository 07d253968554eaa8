#include "engine/kernels/q4_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "common/float16.h"
#include "common/huge_pages.h"
#include "engine/kernels/q4_gemv.h"

namespace pagoda {
namespace {

// Where group g of column n puts its quants, scale and min in a panel.
struct Slot {
  uint8_t* block;  // the 320-byte block of (panel, group, vector)
  int64_t i;       // column within the block's 16
};

Slot slot(uint8_t* base, int64_t n_groups, int64_t n, int64_t g) {
  const int64_t p = n / q4::kPanel, j = (n % q4::kPanel) / q4::kVector;
  return {base + ((p * n_groups + g) * 4 + j) * q4::kBlockBytes, n % q4::kVector};
}

void store_group(const Slot& s, const uint8_t* q, uint16_t scale, uint16_t min) {
  for (int c = 0; c < 4; ++c)
    for (int kk = 0; kk < 4; ++kk) {
      uint8_t& byte = s.block[64 * c + 4 * s.i + kk];
      byte = static_cast<uint8_t>((q[8 * c + kk] & 0x0F) | ((q[8 * c + 4 + kk] & 0x0F) << 4));
    }
  std::memcpy(s.block + 256 + 2 * s.i, &scale, 2);
  std::memcpy(s.block + 288 + 2 * s.i, &min, 2);
}

}  // namespace

Result<Q4Weights> Q4Weights::build(int64_t out, int64_t in, const ColumnSource& source) {
  if (out <= 0 || in <= 0 || in % q4::kGroup != 0)
    return Status::invalid_argument("Q4Weights: in_features must be a positive multiple of 32 (got " +
                                    std::to_string(in) + ")");
  Q4Weights w;
  w.out_ = out;
  w.in_ = in;
  w.n_groups_ = in / q4::kGroup;
  w.n_panels_ = (out + q4::kPanel - 1) / q4::kPanel;
  w.buffer_ = HugeArena::weights().allocate(static_cast<size_t>(w.bytes()));
  if (!w.buffer_)
    return Status::resource_exhausted("Q4Weights: out of memory for " + std::to_string(w.bytes()) + " bytes");
  auto* base = static_cast<uint8_t*>(w.buffer_.get());
  const int64_t groups = w.n_groups_;
  // Every byte of a real column's slots is written below (by the threads,
  // which fault the pages in); only a partial last panel's padding columns
  // need zeros (scale 0, min 0).
  if (out % q4::kPanel != 0) {
    const int64_t panel_bytes = groups * q4::kPanelGroupBytes;
    std::memset(base + (w.n_panels_ - 1) * panel_bytes, 0, static_cast<size_t>(panel_bytes));
  }
  // A panel at a time per thread: its bytes stay in the thread's cache while
  // its 64 columns are written.
#pragma omp parallel
  {
    std::vector<uint8_t> q(static_cast<size_t>(in));
    std::vector<uint16_t> scale(static_cast<size_t>(groups)), min(static_cast<size_t>(groups));
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < w.n_panels_; ++p) {
      for (int64_t n = p * q4::kPanel; n < std::min(out, (p + 1) * q4::kPanel); ++n) {
        source(n, q.data(), scale.data(), min.data());
        for (int64_t g = 0; g < groups; ++g)
          store_group(slot(base, groups, n, g), q.data() + g * q4::kGroup, scale[static_cast<size_t>(g)],
                      min[static_cast<size_t>(g)]);
      }
    }
  }
  return w;
}

Result<Q4Weights> Q4Weights::quantize(const float* data, int64_t out, int64_t in) {
  const int64_t padded = (in + q4::kGroup - 1) / q4::kGroup * q4::kGroup;
  const int64_t groups = padded / q4::kGroup;
  const auto group = [&](int64_t n, int64_t g, uint8_t* q, uint16_t* scale, uint16_t* min) {
    const int64_t k0 = g * q4::kGroup, k1 = std::min(in, k0 + q4::kGroup);
    const float* row = data + n * in;
    float lo = row[k0], hi = row[k0];
    for (int64_t k = k0; k < k1; ++k) {
      lo = std::min(lo, row[k]);
      hi = std::max(hi, row[k]);
    }
    if (k1 - k0 < q4::kGroup) {  // the zero padding is part of the group
      lo = std::min(lo, 0.0f);
      hi = std::max(hi, 0.0f);
    }
    *scale = f32_to_f16((hi - lo) / 15.0f);
    *min = f32_to_f16(lo);
    const float s = f16_to_f32(*scale), m = f16_to_f32(*min);
    const float inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int64_t k = 0; k < q4::kGroup; ++k) {
      const float v = k0 + k < k1 ? row[k0 + k] : 0.0f;
      q[k] = static_cast<uint8_t>(std::clamp(std::nearbyint((v - m) * inv), 0.0f, 15.0f));
    }
  };
  return build(out, padded, [&](int64_t n, uint8_t* q, uint16_t* scale, uint16_t* min) {
    for (int64_t g = 0; g < groups; ++g) group(n, g, q + g * q4::kGroup, scale + g, min + g);
  });
}

float Q4Weights::value(int64_t n, int64_t k) const {
  const int64_t g = k / q4::kGroup, kk = k % q4::kGroup;
  const Slot s = slot(const_cast<uint8_t*>(data()), n_groups_, n, g);
  const int64_t c = kk / 8, within = kk % 8;
  const uint8_t byte = s.block[64 * c + 4 * s.i + within % 4];
  const int q = within < 4 ? (byte & 0x0F) : (byte >> 4);
  uint16_t scale, min;
  std::memcpy(&scale, s.block + 256 + 2 * s.i, 2);
  std::memcpy(&min, s.block + 288 + 2 * s.i, 2);
  return f16_to_f32(scale) * static_cast<float>(q) + f16_to_f32(min);
}

}  // namespace pagoda
