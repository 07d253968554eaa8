#include "engine/linear.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

#include <dnnl.hpp>


#include "engine/dnnl_context.h"
#include "engine/quantize.h"
#include "engine/simd.h"

namespace pagoda {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

constexpr std::array<int64_t, 18> kBuckets = {1,  2,  3,  4,   6,   8,   12,  16,  24,
                                              32, 48, 64, 96, 128, 192, 256, 384, 512};
static_assert(kBuckets.back() == Linear::kMaxBucket);

// Largest `in` for int8: 255 * 127 * in must fit an int32 accumulator.
constexpr int64_t kMaxInt8In = 65536;

size_t bucket_index(int64_t m) {
  return static_cast<size_t>(std::lower_bound(kBuckets.begin(), kBuckets.end(), m) -
                             kBuckets.begin());
}

}  // namespace

const char* weight_dtype_name(WeightDtype dtype) {
  switch (dtype) {
    case WeightDtype::kF32: return "f32";
    case WeightDtype::kBF16: return "bf16";
    case WeightDtype::kInt8: return "int8";
  }
  return "unknown";
}

Result<WeightDtype> parse_weight_dtype(const std::string& name) {
  if (name == "f32") return WeightDtype::kF32;
  if (name == "bf16") return WeightDtype::kBF16;
  if (name == "int8") return WeightDtype::kInt8;
  return Status::invalid_argument("weight dtype '" + name +
                                  "' is not known; allowed: f32, bf16, int8");
}

int64_t Linear::bucket_for(int64_t m) {
  return kBuckets[bucket_index(std::clamp<int64_t>(m, 1, kMaxBucket))];
}

struct Linear::Impl {
  struct Bucket {
    int64_t m = 0;
    dnnl::matmul prim;
    dnnl::memory weights;  // usually the shared packed weights
    dnnl::memory src, dst;  // no buffer; handles set per call
    std::string impl;
  };

  int64_t in = 0, out = 0;
  WeightDtype dtype = WeightDtype::kF32;
  dnnl::memory packed;             // packed weights shared by the buckets
  std::vector<Bucket> buckets;     // one per kBuckets entry
  std::vector<float> w_scale;      // int8: scale_w[n]
  std::vector<int32_t> w_comp;     // int8: 128 * sum_k Wq[n, k]

  dt src_dt() const {
    switch (dtype) {
      case WeightDtype::kF32: return dt::f32;
      case WeightDtype::kBF16: return dt::bf16;
      case WeightDtype::kInt8: return dt::u8;
    }
    return dt::f32;
  }
  dt dst_dt() const { return dtype == WeightDtype::kInt8 ? dt::s32 : dt::f32; }

  void run_chunk(const float* x, int64_t m, float* y);
  void int8_epilogue(const int32_t* acc, const float* x_scale, int64_t m, float* y) const;
};

Linear::Linear(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;
Linear::~Linear() = default;

int64_t Linear::in_features() const { return impl_->in; }
int64_t Linear::out_features() const { return impl_->out; }
WeightDtype Linear::dtype() const { return impl_->dtype; }
int64_t Linear::weight_bytes() const {
  return static_cast<int64_t>(impl_->packed.get_desc().get_size());
}
std::string Linear::impl_name(int64_t m) const {
  return impl_->buckets[bucket_index(std::clamp<int64_t>(m, 1, kMaxBucket))].impl;
}

Result<Linear> Linear::create(const float* data, int64_t out, int64_t in, WeightDtype dtype) {
  const WeightBlock block{data, out};
  return create_fused(std::span<const WeightBlock>(&block, 1), in, dtype);
}

Result<Linear> Linear::create_fused(std::span<const WeightBlock> blocks, int64_t in,
                                    WeightDtype dtype) {
  if (blocks.empty()) return Status::invalid_argument("Linear: no weight blocks");
  if (in <= 0) return Status::invalid_argument("Linear: in_features must be positive");
  int64_t out = 0;
  for (const auto& b : blocks) {
    if (b.data == nullptr || b.rows <= 0) {
      return Status::invalid_argument("Linear: every weight block needs data and rows > 0");
    }
    out += b.rows;
  }
  if (dtype == WeightDtype::kInt8 && in > kMaxInt8In) {
    std::ostringstream os;
    os << "Linear: int8 weights need in_features <= " << kMaxInt8In << " (got " << in << ")";
    return Status::invalid_argument(os.str());
  }

  auto impl = std::make_unique<Impl>();
  impl->in = in;
  impl->out = out;
  impl->dtype = dtype;

  // The whole weight as one f32 [out, in] array (a view when not fused).
  std::vector<float> stacked;
  const float* w = blocks[0].data;
  if (blocks.size() > 1) {
    stacked.resize(static_cast<size_t>(out * in));
    float* p = stacked.data();
    for (const auto& b : blocks) {
      std::memcpy(p, b.data, static_cast<size_t>(b.rows * in) * sizeof(float));
      p += b.rows * in;
    }
    w = stacked.data();
  }

  // oneDNN's matmul weights are [K, N] = [in, out]; our [out, in] row-major
  // array is exactly that in format "ba".
  std::vector<int8_t> wq;
  const void* user_data = w;
  dt user_dt = dt::f32;
  if (dtype == WeightDtype::kInt8) {
    wq.resize(static_cast<size_t>(out * in));
    impl->w_scale.resize(static_cast<size_t>(out));
    impl->w_comp.resize(static_cast<size_t>(out));
    quantize_rows_s8(w, out, in, wq.data(), impl->w_scale.data(), impl->w_comp.data());
    for (auto& c : impl->w_comp) c *= 128;
    user_data = wq.data();
    user_dt = dt::s8;
  }
  const dt w_dt = dtype == WeightDtype::kF32   ? dt::f32
                  : dtype == WeightDtype::kBF16 ? dt::bf16
                                                : dt::s8;

  try {
    DnnlContext& ctx = DnnlContext::get();
    const dnnl::engine& eng = ctx.engine();
    dnnl::stream& strm = ctx.stream();
    const dnnl::memory::desc user_md({in, out}, user_dt, tag::ba);
    dnnl::memory user(user_md, eng, const_cast<void*>(user_data));
    const dnnl::memory::desc any_w({in, out}, w_dt, tag::any);

    auto make_pd = [&](int64_t m, const dnnl::memory::desc& wmd) {
      const dnnl::memory::desc src_md({m, in}, impl->src_dt(), tag::ab);
      const dnnl::memory::desc dst_md({m, out}, impl->dst_dt(), tag::ab);
      return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, wmd, dst_md), eng);
    };
    auto pack = [&](const dnnl::memory::desc& md) {
      dnnl::memory m(md, eng);
      dnnl::reorder(user, m).execute(strm, user, m);
      strm.wait();
      return m;
    };

    // The packed layout oneDNN prefers for a mid-size batch; every bucket
    // reuses it when its implementation accepts it.
    const auto ref_pd = make_pd(32, any_w);
    impl->packed = pack(ref_pd.weights_desc());
    const dnnl::memory::desc packed_md = impl->packed.get_desc();

    for (int64_t m : kBuckets) {
      Impl::Bucket b;
      b.m = m;
      auto pd = make_pd(m, any_w);
      if (pd.weights_desc() == packed_md) {
        b.weights = impl->packed;
      } else {
        try {
          pd = make_pd(m, packed_md);
          b.weights = impl->packed;
        } catch (const dnnl::error&) {
          b.weights = pack(pd.weights_desc());  // this bucket needs its own copy
        }
      }
      b.prim = dnnl::matmul(pd);
      b.impl = pd.impl_info_str();
      b.src = dnnl::memory(pd.src_desc(), eng, DNNL_MEMORY_NONE);
      b.dst = dnnl::memory(pd.dst_desc(), eng, DNNL_MEMORY_NONE);
      impl->buckets.push_back(std::move(b));
    }
  } catch (const dnnl::error& e) {
    std::ostringstream os;
    os << "Linear: oneDNN failed to set up a " << weight_dtype_name(dtype) << " matmul ["
       << out << " x " << in << "]: " << e.what();
    return Status::internal(os.str());
  }
  return Linear(std::move(impl));
}

void Linear::forward(const float* x, int64_t m, float* y) {
  try {
    for (int64_t done = 0; done < m; done += kMaxBucket) {
      const int64_t rows = std::min(kMaxBucket, m - done);
      impl_->run_chunk(x + done * impl_->in, rows, y + done * impl_->out);
    }
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "pagoda: internal error: oneDNN matmul failed: %s\n", e.what());
    std::abort();
  }
}

void Linear::Impl::run_chunk(const float* x, int64_t m, float* y) {
  DnnlContext& ctx = DnnlContext::get();
  Bucket& b = buckets[bucket_index(m)];
  const int64_t bm = b.m;
  const bool exact = (m == bm);
  void* src = nullptr;
  void* dst = nullptr;
  float* x_scale = nullptr;
  switch (dtype) {
    case WeightDtype::kF32: {
      if (exact) {
        src = const_cast<float*>(x);
      } else {
        auto* s = static_cast<float*>(ctx.scratch(DnnlContext::kSrc, bm * in * sizeof(float)));
        std::memcpy(s, x, static_cast<size_t>(m * in) * sizeof(float));
        std::memset(s + m * in, 0, static_cast<size_t>((bm - m) * in) * sizeof(float));
        src = s;
      }
      dst = exact ? y : ctx.scratch(DnnlContext::kDst, bm * out * sizeof(float));
      break;
    }
    case WeightDtype::kBF16: {
      auto* s = static_cast<uint16_t*>(ctx.scratch(DnnlContext::kSrc, bm * in * sizeof(uint16_t)));
      f32_to_bf16_n(x, m * in, s);
      std::memset(s + m * in, 0, static_cast<size_t>((bm - m) * in) * sizeof(uint16_t));
      src = s;
      dst = exact ? y : ctx.scratch(DnnlContext::kDst, bm * out * sizeof(float));
      break;
    }
    case WeightDtype::kInt8: {
      auto* s = static_cast<uint8_t*>(ctx.scratch(DnnlContext::kSrc, bm * in));
      x_scale = static_cast<float*>(ctx.scratch(DnnlContext::kRowScale, bm * sizeof(float)));
      quantize_rows_u8(x, m, in, s, x_scale);
      std::memset(s + m * in, 128, static_cast<size_t>((bm - m) * in));  // zero rows
      src = s;
      dst = ctx.scratch(DnnlContext::kDst, bm * out * sizeof(int32_t));
      break;
    }
  }
  b.src.set_data_handle(src);
  b.dst.set_data_handle(dst);
  b.prim.execute(ctx.stream(), {{DNNL_ARG_SRC, b.src},
                                {DNNL_ARG_WEIGHTS, b.weights},
                                {DNNL_ARG_DST, b.dst}});
  ctx.stream().wait();
  if (dtype == WeightDtype::kInt8) {
    int8_epilogue(static_cast<const int32_t*>(dst), x_scale, m, y);
  } else if (!exact) {
    std::memcpy(y, dst, static_cast<size_t>(m * out) * sizeof(float));
  }
}

void Linear::Impl::int8_epilogue(const int32_t* acc, const float* x_scale, int64_t m,
                                 float* y) const {
  const int64_t n_out = out;
  const int32_t* comp = w_comp.data();
  const float* ws = w_scale.data();
#pragma omp parallel for schedule(static) if (m * n_out > (1 << 15))
  for (int64_t r = 0; r < m; ++r) {
    const int32_t* a = acc + r * n_out;
    float* yr = y + r * n_out;
    const float sx = x_scale[r];
    int64_t n = 0;
#if defined(__AVX512F__)
    const __m512 vsx = _mm512_set1_ps(sx);
    for (; n + 16 <= n_out; n += 16) {
      const __m512i v = _mm512_sub_epi32(_mm512_loadu_si512(a + n), _mm512_loadu_si512(comp + n));
      const __m512 s = _mm512_mul_ps(vsx, _mm512_loadu_ps(ws + n));
      _mm512_storeu_ps(yr + n, _mm512_mul_ps(_mm512_cvtepi32_ps(v), s));
    }
#endif
    for (; n < n_out; ++n) yr[n] = static_cast<float>(a[n] - comp[n]) * (sx * ws[n]);
  }
}

}  // namespace pagoda
