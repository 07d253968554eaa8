#include "engine/kernels/linear.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <sstream>
#include <vector>

#include <omp.h>
#include <dnnl.hpp>

#include "common/huge_pages.h"
#include "engine/kernels/amx_gemm.h"
#include "engine/kernels/dnnl_context.h"
#include "engine/kernels/gemv.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/q4_gemv.h"
#include "engine/kernels/q4_weights.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/simd.h"

namespace pagoda {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Batch-size buckets. oneDNN's bf16 and int8 kernels run M = 176 slower than
// 192 and 56 no faster than 64 (linear_bench), so they keep powers of two
// and 1.5x powers of two; the f32 kernel's time follows M, so f32 adds steps
// of 8 rows to 64 and of 16 to 256, which keeps the padding of the common
// mixed steps (a few decodes plus a prefill chunk) near 5%, not 13-50%.
constexpr std::array<int64_t, 18> kCoarseBuckets = {1,  2,  3,  4,  6,   8,   12,  16,  24,
                                                    32, 48, 64, 96, 128, 192, 256, 384, 512};
constexpr std::array<int64_t, 30> kFineBuckets = {1,   2,   3,   4,   6,   8,   12,  16,  24,  32,
                                                  40,  48,  56,  64,  80,  96,  112, 128, 144, 160,
                                                  176, 192, 208, 224, 240, 256, 320, 384, 448, 512};
static_assert(kCoarseBuckets.back() == Linear::kMaxBucket && kFineBuckets.back() == Linear::kMaxBucket);

std::span<const int64_t> buckets_of(WeightDtype dtype) {
  if (dtype == WeightDtype::kF32) return kFineBuckets;
  return kCoarseBuckets;
}

// Largest `in` for int8: 255 * 127 * in must fit an int32 accumulator.
constexpr int64_t kMaxInt8In = 65536;

// Calls whose packed weights times rows are below this run the panel
// kernels on one thread (a parallel region costs more than the work).
constexpr int64_t kGemvParallelBytes = 256 << 10;

// Runs of consecutive panels per thread for calls of up to 4 rows. Handing
// out one panel at a time interleaved the threads' panels and broke each
// thread's stream of consecutive bytes at every panel: the batch-1 step
// read its weights at ~35 GB/s; in runs of half a thread's share, ~43 GB/s
// (bench-200m int4 and int8 on an AMD EPYC Zen 5, BENCHMARKS.md "4-bit
// weights and GGUF files").
constexpr int64_t kGemvRunsPerThread = 2;

// Activation values from which the panel kernels convert / quantize the rows
// on all threads (8 rows of 1024).
constexpr int64_t kParallelConvertValues = 8192;

// Default largest M for the panel kernels per dtype: where they stop beating
// oneDNN on this dtype (measured with linear_bench and decode_bench;
// BENCHMARKS.md, docs/perf-notes.md). f32: up to 64. Without AMX, the int8
// (VNNI) and bf16 chunked kernels win at every M up to the largest bucket;
// with AMX the tile kernels win from M = 5. Where the level has no vector
// int8 / bf16 kernel, the scalar fallback takes only small batches; so does
// the AVX2 int8 kernel beside oneDNN's panel layout (AVX-512 without VNNI).
// (Where Linear packs the panels itself, every M runs them: create_fused.)
int64_t default_gemv_max_m(WeightDtype dtype) {
  switch (dtype) {
    case WeightDtype::kF32:
      return 64;
    case WeightDtype::kBF16:
      return !amx::available() && gemv::vector_bf16() ? Linear::kMaxBucket : 4;
    case WeightDtype::kInt8:
      if (amx::available()) return 4;
      // The AVX2 kernel (no VNNI) on oneDNN's panel layout, i.e. beside
      // oneDNN's AVX-512 int8 matmul: small batches (not measured: no such
      // host). Where oneDNN's layout is not the panel layout, Linear packs
      // its own and every M runs the AVX2 kernel (create_fused).
      return gemv::vector_s8() && active_kernel_isa() >= IsaLevel::kAvx512Vnni ? Linear::kMaxBucket : 8;
    case WeightDtype::kInt4:
      return Linear::kMaxBucket;  // only the q4 kernels read these weights
  }
  return 0;
}

// Default largest M for the AMX tile kernels (amx_gemm.h): int8 and bf16,
// every chunk (linear_bench, the five bench-200m shapes: int8 1.2-2x less
// time than oneDNN's AMX matmul at M = 6-256, bf16 1.1-1.9x at M = 6-192;
// a tie or better at 256-512; at M <= 4 the panel kernel is as fast or
// faster).
int64_t default_amx_max_m(WeightDtype dtype) {
  return dtype != WeightDtype::kF32 && amx::available() ? Linear::kMaxBucket : 0;
}

// Values per VNNI group in oneDNN's packed layout (f32 1, bf16 pairs, s8 quads).
int64_t vnni_group(WeightDtype dtype) {
  switch (dtype) {
    case WeightDtype::kF32:
      return 1;
    case WeightDtype::kBF16:
      return 2;
    case WeightDtype::kInt8:
      return 4;
    case WeightDtype::kInt4:  // not oneDNN's (run_q4)
      break;
  }
  return 1;
}

// True when `md` ([K, N] weights) is the panel layout gemv.h reads:
// BA16a64b (f32), BA16a64b2a (bf16), BA16a64b4a (s8), zero-padded.
bool is_panel_layout(const dnnl::memory::desc& md, int64_t v) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.ndims != 2 || d.format_kind != dnnl_blocked || d.extra.flags != 0) return false;
  const auto& b = d.format_desc.blocking;
  const int64_t kp = d.padded_dims[0], np = d.padded_dims[1];
  if (kp % (gemv::kKBlock * v) != 0 || np % gemv::kPanel != 0) return false;
  if (d.offset0 != 0) return false;
  if (v == 1) {
    if (b.inner_nblks != 2) return false;
  } else {
    if (b.inner_nblks != 3 || b.inner_blks[2] != v || b.inner_idxs[2] != 0) return false;
  }
  return b.inner_blks[0] == gemv::kKBlock && b.inner_idxs[0] == 0 && b.inner_blks[1] == gemv::kPanel &&
         b.inner_idxs[1] == 1 && b.strides[0] == gemv::kKBlock * v * gemv::kPanel && b.strides[1] == kp * gemv::kPanel;
}

// The index of the smallest bucket >= m (m clamped to [1, kMaxBucket]).
size_t bucket_index(std::span<const int64_t> buckets, int64_t m) {
  m = std::clamp<int64_t>(m, 1, Linear::kMaxBucket);
  return static_cast<size_t>(std::lower_bound(buckets.begin(), buckets.end(), m) - buckets.begin());
}

}  // namespace

const char* weight_dtype_name(WeightDtype dtype) {
  switch (dtype) {
    case WeightDtype::kF32:
      return "f32";
    case WeightDtype::kBF16:
      return "bf16";
    case WeightDtype::kInt8:
      return "int8";
    case WeightDtype::kInt4:
      return "int4";
  }
  return "unknown";
}

Result<WeightDtype> parse_weight_dtype(const std::string& name) {
  if (name == "f32") return WeightDtype::kF32;
  if (name == "bf16") return WeightDtype::kBF16;
  if (name == "int8") return WeightDtype::kInt8;
  if (name == "int4") return WeightDtype::kInt4;
  return Status::invalid_argument("weight dtype '" + name + "' is not known; allowed: f32, bf16, int8, int4");
}

int64_t Linear::bucket_for(int64_t m, WeightDtype dtype) {
  const std::span<const int64_t> buckets = buckets_of(dtype);
  return buckets[bucket_index(buckets, m)];
}

struct Linear::Impl {
  struct Bucket {
    int64_t m = 0;
    dnnl::matmul prim;
    dnnl::memory weights;   // usually the shared packed weights
    dnnl::memory src, dst;  // no buffer; handles set per call
    std::string impl;
  };

  int64_t in = 0, out = 0;
  WeightDtype dtype = WeightDtype::kF32;
  std::vector<std::shared_ptr<void>> weight_buffers;  // memory behind packed and any bucket's copy
  dnnl::memory packed;                                // packed weights shared by the buckets
  std::vector<Bucket> buckets;                        // one per entry of buckets_of(dtype)
  std::vector<float> w_scale;                         // int8: scale_w[n]
  std::vector<int32_t> w_comp;                        // int8: 128 * sum_k Wq[n, k]
  int32_t int8_max_q = 0;                             // int8: the largest |Wq| allowed
  // Small-batch kernel (gemv.h) on `packed`, when oneDNN chose its panel layout.
  bool panel_layout = false;
  int64_t kp = 0;  // padded K of the panel layout
  int64_t n_panels = 0;
  std::unique_ptr<Q4Weights> q4;  // int4: the q4 panel weights (q4_gemv.h); no oneDNN
  int64_t gemv_max_m = 0;         // M <= this runs the panel kernels (gemv.h)
  int64_t amx_max_m = 0;          // else M <= this runs the AMX tile kernel (int8, bf16)

  dt src_dt() const {
    switch (dtype) {
      case WeightDtype::kF32:
        return dt::f32;
      case WeightDtype::kBF16:
        return dt::bf16;
      case WeightDtype::kInt8:
        return dt::u8;
      case WeightDtype::kInt4:
        break;
    }
    return dt::f32;
  }
  dt dst_dt() const { return dtype == WeightDtype::kInt8 ? dt::s32 : dt::f32; }

  void run_chunk(const float* x, int64_t m, float* y);
  void run_gemv(const float* x, int64_t m, float* y);
  void run_amx(const float* x, int64_t m, float* y);
  void run_q4(const float* x, int64_t m, float* y);
  void set_amx_max_m(int64_t max_m) {
    const bool ok = panel_layout && dtype != WeightDtype::kF32 && amx::available();
    amx_max_m = ok ? std::clamp<int64_t>(max_m, 0, kMaxBucket) : 0;
  }
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
  if (impl_->q4) return impl_->q4->bytes();
  return static_cast<int64_t>(impl_->packed.get_desc().get_size());
}
std::string Linear::impl_name(int64_t m) const {
  if (impl_->q4) return "gemv:q4_panels";
  const int64_t chunk = std::min(m, kMaxBucket);
  if (chunk <= impl_->gemv_max_m) {
    return std::string("gemv:panels_") + weight_dtype_name(impl_->dtype);
  }
  if (chunk <= impl_->amx_max_m && amx::available()) {
    return std::string("amx:panels_") + weight_dtype_name(impl_->dtype);
  }
  return impl_->buckets[bucket_index(buckets_of(impl_->dtype), m)].impl;
}

Result<Linear> Linear::create(const float* data, int64_t out, int64_t in, WeightDtype dtype) {
  const WeightBlock block{data, out};
  return create_fused(std::span<const WeightBlock>(&block, 1), in, dtype);
}

namespace {

// Rows per piece when int8 blocks are quantized from their row sources:
// a piece's f32 rows (512 KB for in = 2048) stay in the thread's L2 between
// being written and quantized.
constexpr int64_t kRowsPerPiece = 64;

// quantize_rows_s8 of the stacked blocks (no stacked copy), a piece of rows
// at a time, each taken from `data` or, when that is null, from its row
// source into a per-thread buffer: the pieces are split over all threads.
void quantize_blocks_s8(std::span<const WeightBlock> blocks, int64_t in, int8_t* q, float* scale, int32_t* row_sum,
                        int32_t max_q) {
  struct Piece {
    const WeightBlock* block;
    int64_t first, count, row;  // rows [first, first + count) of block, row `row` of the stack
  };
  std::vector<Piece> pieces;
  int64_t row = 0;
  for (const WeightBlock& b : blocks) {
    for (int64_t first = 0; first < b.rows; first += kRowsPerPiece) {
      pieces.push_back({&b, first, std::min(kRowsPerPiece, b.rows - first), row + first});
    }
    row += b.rows;
  }
  const auto n_pieces = static_cast<int64_t>(pieces.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < n_pieces; ++i) {
    // Kept for the thread's life (one piece), so its pages are faulted in
    // once, not once per Linear.
    static thread_local std::vector<float> buffer;
    const Piece& p = pieces[static_cast<size_t>(i)];
    const float* rows = p.block->data == nullptr ? nullptr : p.block->data + p.first * in;
    if (rows == nullptr) {
      buffer.resize(static_cast<size_t>(p.count * in));
      (*p.block->f32_rows)(p.first, p.count, buffer.data());
      rows = buffer.data();
    }
    // Inside this parallel region its own parallel loop runs on this thread.
    quantize_rows_s8(rows, p.count, in, q + p.row * in, scale + p.row, row_sum + p.row, max_q);
  }
}

// oneDNN's ISA as it runs here (the CPU's best, or the cap of
// apply_isa_choice), as bits: dnnl_cpu_isa_t values are unions of features.
uint32_t onednn_isa_bits() { return static_cast<uint32_t>(dnnl::get_effective_cpu_isa()); }

}  // namespace

int32_t Linear::int8_weight_max() {
  const uint32_t vnni_bits =
      static_cast<uint32_t>(dnnl_cpu_isa_avx512_core_vnni) & ~static_cast<uint32_t>(dnnl_cpu_isa_avx512_core);
  const uint32_t avx2_vnni_bits =
      static_cast<uint32_t>(dnnl_cpu_isa_avx2_vnni) & ~static_cast<uint32_t>(dnnl_cpu_isa_avx2);
  const uint32_t isa = onednn_isa_bits();
  return (isa & (vnni_bits | avx2_vnni_bits)) != 0 ? 127 : 63;
}

bool Linear::dtype_supported(WeightDtype dtype) {
  if (dtype != WeightDtype::kBF16) return true;
  const auto avx512 = static_cast<uint32_t>(dnnl_cpu_isa_avx512_core);
  return (onednn_isa_bits() & avx512) == avx512;
}

Result<Linear> Linear::create_fused(std::span<const WeightBlock> blocks, int64_t in, WeightDtype dtype) {
  if (blocks.empty()) return Status::invalid_argument("Linear: no weight blocks");
  if (in <= 0) return Status::invalid_argument("Linear: in_features must be positive");
  // oneDNN has bf16 matmuls only from AVX-512 up: a limit of this machine
  // (or of the ISA oneDNN was capped at), not an internal error.
  if (!dtype_supported(dtype)) {
    return Status::invalid_argument(std::string("Linear: ") + weight_dtype_name(dtype) +
                                    " weights need AVX-512 (this CPU, or the kernel level chosen, has none): use "
                                    "int8, int4 or f32 weights");
  }
  int64_t out = 0;
  const bool stored = dtype == WeightDtype::kInt4 &&
                      std::all_of(blocks.begin(), blocks.end(), [](const WeightBlock& b) { return b.q4 != nullptr; });
  for (const auto& b : blocks) {
    const bool from_rows = dtype == WeightDtype::kInt8 && b.f32_rows != nullptr;
    if ((b.data == nullptr && !stored && !from_rows) || b.rows <= 0) {
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

  // int4 runs on its own packed weights (q4_weights.h), never oneDNN.
  auto int4_linear = [&impl](Result<Q4Weights> q4) -> Result<Linear> {
    if (!q4) return q4.status();
    impl->q4 = std::make_unique<Q4Weights>(std::move(q4).value());
    impl->gemv_max_m = kMaxBucket;
    return Linear(std::move(impl));
  };
  // 4-bit groups as the file stores them: no f32 needed.
  if (stored)
    return int4_linear(Q4Weights::build(out, in, [blocks](int64_t n, uint8_t* q, uint16_t* scale, uint16_t* min) {
      for (const WeightBlock& b : blocks) {
        if (n < b.rows) return (*b.q4)(n, q, scale, min);
        n -= b.rows;
      }
    }));

  // The whole weight as one f32 [out, in] array (a view when not fused, or
  // when the blocks already lie one after the other); int8 quantizes the
  // blocks where they are instead.
  std::vector<float> stacked;
  const float* w = blocks[0].data;
  bool adjacent = true;
  for (size_t i = 1; i < blocks.size(); ++i) adjacent &= blocks[i].data == blocks[i - 1].data + blocks[i - 1].rows * in;
  if (!adjacent && dtype != WeightDtype::kInt8) {
    stacked.resize(static_cast<size_t>(out * in));
    float* p = stacked.data();
    for (const auto& b : blocks) {
      std::memcpy(p, b.data, static_cast<size_t>(b.rows * in) * sizeof(float));
      p += b.rows * in;
    }
    w = stacked.data();
  }

  if (dtype == WeightDtype::kInt4) return int4_linear(Q4Weights::quantize(w, out, in));

  const dt w_dt = dtype == WeightDtype::kF32 ? dt::f32 : dtype == WeightDtype::kBF16 ? dt::bf16 : dt::s8;
  try {
    DnnlContext& ctx = DnnlContext::get();
    const dnnl::engine& eng = ctx.engine();
    dnnl::stream& strm = ctx.stream();
    const dnnl::memory::desc any_w({in, out}, w_dt, tag::any);
    auto make_pd = [&](int64_t m, const dnnl::memory::desc& wmd) {
      const dnnl::memory::desc src_md({m, in}, impl->src_dt(), tag::ab);
      const dnnl::memory::desc dst_md({m, out}, impl->dst_dt(), tag::ab);
      return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, wmd, dst_md), eng);
    };
    // The packed layout oneDNN prefers for a mid-size batch; every bucket
    // reuses it when its implementation accepts it.
    const auto ref_pd = make_pd(32, any_w);
    // int8 where oneDNN has no VNNI and its layout is not the panel layout,
    // but the chosen level has a vector panel kernel (AVX2): the weights are
    // packed in the panel layout instead and every M runs that kernel (at
    // M = 1-16 2.2-1.7x faster than oneDNN's AVX2 int8 matmul, at 64-192 as
    // fast: linear_bench on a Zen 3 class EPYC); no oneDNN matmul is made.
    // The weights keep int8_weight_max(), 7 bits there: the kernel's cheap
    // form; 8-bit weights would cost 1.6x at large M (gemv_s8_avx2.cpp). On
    // an AVX2-VNNI CPU oneDNN's VNNI kernels were not measured against ours.
    // PAGODA_GEMV_MAX_M <= 0 (always oneDNN) keeps oneDNN's layout, for A/B
    // runs.
    const char* gemv_env = std::getenv("PAGODA_GEMV_MAX_M");
    const bool own_panels = dtype == WeightDtype::kInt8 && gemv::vector_s8() && int8_weight_max() <= 63 &&
                            !(gemv_env != nullptr && std::atoll(gemv_env) <= 0) &&
                            !is_panel_layout(ref_pd.weights_desc(), vnni_group(dtype));

    // oneDNN's matmul weights are [K, N] = [in, out]; our [out, in] row-major
    // array is exactly that in format "ba".
    // int8: the quantized rows, in a buffer each thread reuses (creating a
    // model's Linears one after another faults its pages in once).
    static thread_local ScratchBuffer wq_buffer;
    const void* user_data = w;
    dt user_dt = dt::f32;
    if (dtype == WeightDtype::kInt8) {
      auto* wq = static_cast<int8_t*>(wq_buffer.get(static_cast<size_t>(out * in)));
      if (wq == nullptr) throw std::bad_alloc();
      impl->int8_max_q = int8_weight_max();
      impl->w_scale.resize(static_cast<size_t>(out));
      impl->w_comp.resize(static_cast<size_t>(out));
      quantize_blocks_s8(blocks, in, wq, impl->w_scale.data(), impl->w_comp.data(),
                         impl->int8_max_q);  // on all threads
      for (auto& c : impl->w_comp) c *= 128;
      user_data = wq;
      user_dt = dt::s8;
    }
    const dnnl::memory::desc user_md({in, out}, user_dt, tag::ba);
    dnnl::memory user(user_md, eng, const_cast<void*>(user_data));
    auto pack = [&](const dnnl::memory::desc& md) {
      std::shared_ptr<void> buffer = HugeArena::weights().allocate(md.get_size());
      if (!buffer) throw std::bad_alloc();
      dnnl::memory m(md, eng, buffer.get());
      impl->weight_buffers.push_back(std::move(buffer));
      dnnl::reorder(user, m).execute(strm, user, m);
      strm.wait();
      return m;
    };

    impl->packed = pack(own_panels ? dnnl::memory::desc({in, out}, dt::s8, tag::BA16a64b4a) : ref_pd.weights_desc());
    const dnnl::memory::desc packed_md = impl->packed.get_desc();
    impl->panel_layout = is_panel_layout(packed_md, vnni_group(dtype));
    if (own_panels && !impl->panel_layout)
      return Status::internal("Linear: the int8 panel layout did not pack as such");
    if (impl->panel_layout) {
      impl->kp = packed_md.data.padded_dims[0];
      impl->n_panels = packed_md.data.padded_dims[1] / gemv::kPanel;
      if (own_panels) {
        impl->gemv_max_m = kMaxBucket;  // no oneDNN matmul to fall back on
        return Linear(std::move(impl));
      }
      impl->gemv_max_m = default_gemv_max_m(dtype);
      if (gemv_env != nullptr) impl->gemv_max_m = std::clamp<int64_t>(std::atoll(gemv_env), 0, kMaxBucket);
      impl->amx_max_m = default_amx_max_m(dtype);
      if (const char* env = std::getenv("PAGODA_AMX_MAX_M")) impl->set_amx_max_m(std::atoll(env));
    }

    for (int64_t m : buckets_of(dtype)) {
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
    os << "Linear: oneDNN failed to set up a " << weight_dtype_name(dtype) << " matmul [" << out << " x " << in
       << "]: " << e.what();
    return Status::internal(os.str());
  } catch (const std::bad_alloc&) {
    return Status::resource_exhausted("Linear: out of memory quantizing or packing a " +
                                      std::string(weight_dtype_name(dtype)) + " matmul [" + std::to_string(out) +
                                      " x " + std::to_string(in) + "]");
  }
  return Linear(std::move(impl));
}

void Linear::set_gemv_max_m(int64_t max_m) {
  if (impl_->buckets.empty()) return;  // the panel kernels are all there is (int8 on AVX2, int4)
  impl_->gemv_max_m = impl_->panel_layout ? std::clamp<int64_t>(max_m, 0, kMaxBucket) : 0;
}

int32_t Linear::int8_max_q() const { return impl_->int8_max_q; }

int64_t Linear::gemv_max_m() const { return impl_->gemv_max_m; }

void Linear::set_amx_max_m(int64_t max_m) { impl_->set_amx_max_m(max_m); }

int64_t Linear::amx_max_m() const { return impl_->amx_max_m; }

void Linear::forward(const float* x, int64_t m, float* y) {
  if (m <= 0) return;
  if (impl_->q4) {
    for (int64_t done = 0; done < m; done += kMaxBucket)
      impl_->run_q4(x + done * impl_->in, std::min(kMaxBucket, m - done), y + done * impl_->out);
    return;
  }
  try {
    for (int64_t done = 0; done < m; done += kMaxBucket) {
      const int64_t rows = std::min(kMaxBucket, m - done);
      if (rows <= impl_->gemv_max_m) {
        impl_->run_gemv(x + done * impl_->in, rows, y + done * impl_->out);
      } else if (rows <= impl_->amx_max_m && amx::available()) {  // the level may be lowered after create()
        impl_->run_amx(x + done * impl_->in, rows, y + done * impl_->out);
      } else {
        impl_->run_chunk(x + done * impl_->in, rows, y + done * impl_->out);
      }
    }
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "pagoda: internal error: oneDNN matmul failed: %s\n", e.what());
    std::abort();
  }
}

void Linear::Impl::run_chunk(const float* x, int64_t m, float* y) {
  DnnlContext& ctx = DnnlContext::get();
  Bucket& b = buckets[bucket_index(buckets_of(dtype), m)];
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
    case WeightDtype::kInt4:  // never reaches oneDNN (run_q4)
      return;
  }
  b.src.set_data_handle(src);
  b.dst.set_data_handle(dst);
  b.prim.execute(ctx.stream(), {{DNNL_ARG_SRC, b.src}, {DNNL_ARG_WEIGHTS, b.weights}, {DNNL_ARG_DST, b.dst}});
  ctx.stream().wait();
  if (dtype == WeightDtype::kInt8) {
    int8_epilogue(static_cast<const int32_t*>(dst), x_scale, m, y);
  } else if (!exact) {
    std::memcpy(y, dst, static_cast<size_t>(m * out) * sizeof(float));
  }
}

void Linear::Impl::run_gemv(const float* x, int64_t m, float* y) {
  DnnlContext& ctx = DnnlContext::get();
  const void* w = packed.get_data_handle();
  // Activations as rows of kp values (zero / zero-point padded); f32 rows
  // are used in place when no padding is needed.
  const WeightDtype d = dtype;
  const int64_t kpad = kp, n = out, k = in;
  const bool convert = d != WeightDtype::kF32 || kp != in;
  // bf16 beyond a few rows runs on f32 FMAs: rows of f32 holding the
  // bf16-rounded values (the same products as the bf16 dot-product path).
  const bool bf16_wide = d == WeightDtype::kBF16 && m > gemv::kBF16DotRows;
  const int64_t value_bytes = d == WeightDtype::kF32 || bf16_wide ? 4 : d == WeightDtype::kBF16 ? 2 : 1;
  void* xs = convert ? ctx.scratch(DnnlContext::kSrc, m * kp * value_bytes) : nullptr;
  float* x_scale =
      d == WeightDtype::kInt8 ? static_cast<float*>(ctx.scratch(DnnlContext::kRowScale, m * sizeof(float))) : nullptr;
  const int64_t np = n_panels;
  const int64_t bytes = static_cast<int64_t>(packed.get_desc().get_size());
  const int nt = bytes * m >= kGemvParallelBytes ? static_cast<int>(std::min<int64_t>(omp_get_max_threads(), np)) : 1;
  auto convert_row = [&](int64_t r) {
    switch (d) {
      case WeightDtype::kF32: {
        float* s = static_cast<float*>(xs) + r * kpad;
        std::memcpy(s, x + r * k, static_cast<size_t>(k) * sizeof(float));
        std::memset(s + k, 0, static_cast<size_t>(kpad - k) * sizeof(float));
        break;
      }
      case WeightDtype::kBF16: {
        if (bf16_wide) {
          float* s = static_cast<float*>(xs) + r * kpad;
          round_to_bf16_n(x + r * k, k, s);
          std::memset(s + k, 0, static_cast<size_t>(kpad - k) * sizeof(float));
          break;
        }
        uint16_t* s = static_cast<uint16_t*>(xs) + r * kpad;
        f32_to_bf16_n(x + r * k, k, s);
        std::memset(s + k, 0, static_cast<size_t>(kpad - k) * sizeof(uint16_t));
        break;
      }
      case WeightDtype::kInt8: {
        uint8_t* s = static_cast<uint8_t*>(xs) + r * kpad;
        quantize_rows_u8(x + r * k, 1, k, s, x_scale + r);
        std::memset(s + k, 128, static_cast<size_t>(kpad - k));
        break;
      }
      case WeightDtype::kInt4:  // run_q4
        break;
    }
  };
  if (convert) {
    // A parallel region costs more than converting a few rows (a few-row
    // call ran up to 1.3x slower with the rows converted inside one).
    if (m * k >= kParallelConvertValues && nt > 1) {
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t r = 0; r < m; ++r) convert_row(r);
    } else {
      for (int64_t r = 0; r < m; ++r) convert_row(r);
    }
  }
  // Panels (64 columns x all of K: 16-256 KB each) handed out dynamically
  // in runs of consecutive panels: on a shared machine one thread is often
  // descheduled for a while, and a static split would make the whole call
  // wait for it. Up to 4 rows (memory-bound), kGemvRunsPerThread runs per
  // thread, so each thread streams long stretches of consecutive bytes;
  // above, runs of a quarter, so the chunked kernels' prefetch of the next
  // chunk crosses into a panel the same thread computes.
  const int64_t run = std::max<int64_t>(1, np / ((m > 4 ? 4 : kGemvRunsPerThread) * nt));
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
  for (int64_t p0 = 0; p0 < np; p0 += run) {
    const int64_t p1 = std::min(np, p0 + run);
    switch (d) {
      case WeightDtype::kF32:
        gemv::f32_panels(static_cast<const float*>(w), kpad, convert ? static_cast<const float*>(xs) : x, m, n, y, n,
                         p0, p1);
        break;
      case WeightDtype::kBF16:
        if (bf16_wide) {
          gemv::bf16_panels_f32x(static_cast<const uint16_t*>(w), kpad, static_cast<const float*>(xs), m, n, y, n, p0,
                                 p1);
        } else {
          gemv::bf16_panels(static_cast<const uint16_t*>(w), kpad, static_cast<const uint16_t*>(xs), m, n, y, n, p0,
                            p1);
        }
        break;
      case WeightDtype::kInt8:
        gemv::s8_panels(static_cast<const int8_t*>(w), kpad, static_cast<const uint8_t*>(xs), m, n, x_scale,
                        w_scale.data(), w_comp.data(), y, n, p0, p1, int8_max_q);
        break;
      case WeightDtype::kInt4:  // run_q4
        break;
    }
  }
}

void Linear::Impl::run_q4(const float* x, int64_t m, float* y) {
  DnnlContext& ctx = DnnlContext::get();
  const int64_t groups = q4->n_groups(), kpad = groups * q4::kGroup, k = in;
  auto* xq = static_cast<int8_t*>(ctx.scratch(DnnlContext::kSrc, m * kpad));
  auto* xsum = static_cast<float*>(ctx.scratch(DnnlContext::kDst, m * groups * sizeof(float)));
  auto* x_scale = static_cast<float*>(ctx.scratch(DnnlContext::kRowScale, m * sizeof(float)));
  const int64_t np = q4->n_panels();
  const int nt =
      q4->bytes() * m >= kGemvParallelBytes ? static_cast<int>(std::min<int64_t>(omp_get_max_threads(), np)) : 1;
  auto quantize_row = [&](int64_t r) {
    int8_t* q = xq + r * kpad;
    int32_t row_sum = 0;
    quantize_rows_s8(x + r * k, 1, k, q, x_scale + r, &row_sum, 127);
    std::memset(q + k, 0, static_cast<size_t>(kpad - k));
    for (int64_t g = 0; g < groups; ++g) {
      int32_t sum = 0;
      for (int64_t i = 0; i < q4::kGroup; ++i) sum += q[g * q4::kGroup + i];
      xsum[r * groups + g] = static_cast<float>(sum);
    }
  };
  if (m * k >= kParallelConvertValues && nt > 1) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < m; ++r) quantize_row(r);
  } else {
    for (int64_t r = 0; r < m; ++r) quantize_row(r);
  }
  // Runs of panels as in run_gemv.
  const int64_t run = std::max<int64_t>(1, np / ((m > 4 ? 4 : kGemvRunsPerThread) * nt));
  const uint8_t* w = q4->data();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
  for (int64_t p0 = 0; p0 < np; p0 += run)
    q4::panels(w, groups, xq, xsum, x_scale, m, out, y, out, p0, std::min(np, p0 + run));
}

void Linear::Impl::run_amx(const float* x, int64_t m, float* y) {
  DnnlContext& ctx = DnnlContext::get();
  const bool int8 = dtype == WeightDtype::kInt8;
  const int64_t row_bytes = int8 ? kp : kp * 2;
  void* xs = ctx.scratch(DnnlContext::kSrc, amx::padded_rows(m) * row_bytes);
  float* x_scale = int8 ? static_cast<float*>(ctx.scratch(DnnlContext::kRowScale, m * sizeof(float))) : nullptr;
  const void* w = packed.get_data_handle();
  const int64_t np = n_panels, kpad = kp, n = out, k = in;
  const int nt = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), np));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    // One converted row (u8 with zero point 128, or bf16 zero-padded).
    thread_local std::vector<uint8_t> row;
    if (static_cast<int64_t>(row.size()) < row_bytes) row.resize(static_cast<size_t>(row_bytes));
    if (int8) {
      std::memset(row.data() + k, 128, static_cast<size_t>(kpad - k));
    } else {
      std::memset(row.data() + 2 * k, 0, static_cast<size_t>(2 * (kpad - k)));
    }
#pragma omp for schedule(static)
    for (int64_t r = 0; r < m; ++r) {
      if (int8) {
        quantize_rows_u8(x + r * k, 1, k, row.data(), x_scale + r);
      } else {
        f32_to_bf16_n(x + r * k, k, reinterpret_cast<uint16_t*>(row.data()));
      }
      amx::pack_row(row.data(), r, row_bytes, xs);
    }
    // Runs of panels handed out dynamically (see run_gemv); within a run the
    // kernel prefetches across panel boundaries.
    const int64_t run = std::max<int64_t>(1, np / (4 * nt));
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < np; p += run) {
      const int64_t p1 = std::min(np, p + run);
      if (int8) {
        amx::s8_panels(static_cast<const int8_t*>(w), kpad, static_cast<const uint8_t*>(xs), m, n, x_scale,
                       w_scale.data(), w_comp.data(), y, n, p, p1);
      } else {
        amx::bf16_panels(static_cast<const uint16_t*>(w), kpad, static_cast<const uint16_t*>(xs), m, n, y, n, p, p1);
      }
    }
  }
}

void Linear::Impl::int8_epilogue(const int32_t* acc, const float* x_scale, int64_t m, float* y) const {
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
