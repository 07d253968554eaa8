// Linear: y[m, out] = x[m, in] * W^T on oneDNN matmul, with W given as f32
// [out, in] row-major (as stored in checkpoints) and kept in one of three
// formats:
//   kF32   f32 weights, f32 activations.
//   kBF16  bf16 weights; activations converted to bf16 per call (oneDNN 2.6
//          has no f32 x bf16 matmul); f32 output.
//   kInt8  symmetric per-output-channel s8 weights (scale_w[n] =
//          max|W[n,:]| / int8_max_q(): 127, or 63 where oneDNN has no
//          VNNI);
//          each activation row quantized on the fly to u8 with zero point 128
//          (scale_x[m] = max|x[m,:]|/127); s32 accumulation; the output is
//          (acc[m,n] - 128 * sum_k Wq[n,k]) * scale_x[m] * scale_w[n].
//   kInt4  4-bit weights in groups of 32 along `in` with an f16 scale and min
//          per group and output (q4_weights.h); activation rows quantized to
//          s8; every M runs the q4 panel kernels (q4_gemv.h), not oneDNN.
//
// Weights are packed once into oneDNN's preferred layout (format_tag::any +
// reorder). Matmul primitives are created for fixed batch-size buckets
// (1, 2, 3, 4, 6, 8, 12, ..., 384, 512: powers of two and 1.5x powers of two;
// for f32 also steps of 8 to 64 and of 16 to 256)
// when the Linear is created, never with a runtime M; a call with M rows uses
// the smallest bucket >= M (padding rows in scratch), and M > 512 is split
// into chunks of 512.
//
// Batches of M <= gemv_max_m() rows (64 for f32; for int8 and bf16 4 with
// AMX, else every chunk, 512, when the build has AVX512_VNNI / AVX512_BF16;
// 8 / 4 without) skip oneDNN: the panel kernels (gemv.h) read
// the same packed weights (oneDNN's 64-column panel layout) and stream them
// once, split over OpenMP threads by panels; they apply the same activation
// conversion / quantization and int8 epilogue. With AMX, int8 and bf16 run
// every larger chunk (M <= amx_max_m(), default 512) on AMX tile kernels
// (amx_gemm.h) on the same packed weights, split the same way; oneDNN's
// matmul remains for f32 above 64 rows and layouts the kernels do not read.
// int8 on a CPU with AVX2 but no VNNI (oneDNN's layout there is not the
// panel layout) is packed in the panel layout by Linear and every M runs the
// AVX2 panel kernel: no oneDNN matmul is made.
//
// Several weight matrices with the same `in` may be stacked into one Linear
// (QKV fused, gate|up fused); the output row then holds their outputs
// concatenated in the order given.
//
// Owns its packed weights and primitives. NOT thread-safe: forward() uses
// the shared DnnlContext stream and scratch, i.e. the engine thread.
// Threads: oneDNN's OpenMP team (OMP_NUM_THREADS / omp_set_num_threads).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"
#include "engine/kernels/q4_weights.h"

namespace pagoda {

enum class WeightDtype { kF32, kBF16, kInt8, kInt4 };

const char* weight_dtype_name(WeightDtype dtype);
// Parses "f32" | "bf16" | "int8" | "int4"; the error lists the allowed values.
Result<WeightDtype> parse_weight_dtype(const std::string& name);

// One row-block of a (possibly fused) weight: `rows` rows of `in` floats.
struct WeightBlock {
  const float* data = nullptr;  // [rows, in], row-major; read only during create()
  int64_t rows = 0;
  // int4: the block's 4-bit groups as its file stores them (a GGUF q4_0,
  // q4_1 or q4_K tensor), packed as they are instead of re-quantizing
  // `data`; used when every block of the Linear has one (`data` may then be
  // null). Read only during create().
  const Q4Weights::ColumnSource* q4 = nullptr;
  // int8: writes the block's rows [first, first + count) as f32 to `out`
  // (a file's dequantization); used when `data` is null. Linear then
  // quantizes a few rows at a time from a small per-thread buffer, so no f32
  // copy of the whole matrix is written. Called from several threads at
  // once; read only during create().
  using RowSource = std::function<void(int64_t first, int64_t count, float* out)>;
  const RowSource* f32_rows = nullptr;
};

class Linear {
 public:
  // Largest batch handled by one primitive; larger M is split.
  static constexpr int64_t kMaxBucket = 512;

  // A Linear with W = data [out, in]. `data` is only read during the call.
  static Result<Linear> create(const float* data, int64_t out, int64_t in, WeightDtype dtype);
  // A Linear whose W is the blocks stacked vertically (out = sum of rows).
  static Result<Linear> create_fused(std::span<const WeightBlock> blocks, int64_t in, WeightDtype dtype);

  // The largest magnitude of an int8 Linear's quantized weights: 127, or 63
  // when oneDNN's int8 kernels on this CPU (or the ISA it was capped at) have
  // no VNNI. Those add the u8 x s8 products of each pair in 16 bits
  // (vpmaddubsw), which saturates once 255 * (|w0| + |w1|) > 32767; 7-bit
  // weights never do. Read by create(); tests emulate with it. (Reading
  // oneDNN's effective ISA fixes it: call only after any cap, as serve's
  // apply_isa_choice does before the model loads.)
  static int32_t int8_weight_max();
  // The largest magnitude of this (int8) Linear's quantized weights: what
  // int8_weight_max() said when it was created. 0 for other dtypes.
  int32_t int8_max_q() const;

  // Whether this CPU (or the ISA oneDNN was capped at) can run `dtype`
  // Linears: bf16 needs oneDNN's AVX-512 kernels; create() fails with
  // invalid_argument otherwise.
  static bool dtype_supported(WeightDtype dtype);

  Linear(Linear&&) noexcept;
  Linear& operator=(Linear&&) noexcept;
  ~Linear();

  // y[m, out] = x[m, in] * W^T; x and y are row-major and must not overlap.
  // m >= 0. Aborts only on an internal oneDNN failure (a bug, not bad input).
  void forward(const float* x, int64_t m, float* y);

  int64_t in_features() const;
  int64_t out_features() const;
  WeightDtype dtype() const;
  // Bytes of packed weights (what one forward streams from memory).
  int64_t weight_bytes() const;
  // The implementation M rows run on: oneDNN's name for the batch bucket,
  // e.g. "brg:avx512_core_amx_int8", "gemv:panels_<dtype>" for the panel
  // kernels or "amx:panels_<dtype>" for the AMX ones (logs and benchmarks).
  std::string impl_name(int64_t m) const;

  // Chunks of M <= gemv_max_m() rows run a panel kernel (gemv.h) that
  // streams the packed weights once instead of oneDNN's matmul; 0 when
  // oneDNN's packed layout is not one it reads. The default per dtype is the
  // measured crossover; the environment variable PAGODA_GEMV_MAX_M, read at
  // create(), overrides it (for benchmarks: 0 = always oneDNN); tests and
  // benchmarks may also set it here (clamped to [0, kMaxBucket], and to 0
  // when the layout is not supported). Where no oneDNN matmul was made (int4;
  // int8 without VNNI, see above) it stays kMaxBucket.
  void set_gemv_max_m(int64_t max_m);
  int64_t gemv_max_m() const;

  // Chunks of gemv_max_m() < M <= amx_max_m() rows run the AMX tile kernel
  // (amx_gemm.h); 0 for f32, when the weights are not in the panel layout or
  // when the CPU / build has no AMX. PAGODA_AMX_MAX_M in the environment, read at
  // create(), overrides the default (0 = oneDNN); the setter clamps to
  // [0, kMaxBucket] and to 0 when unsupported.
  void set_amx_max_m(int64_t max_m);
  int64_t amx_max_m() const;

  // The bucket M rows run in (>= min(m, kMaxBucket)) for weights of `dtype`.
  static int64_t bucket_for(int64_t m, WeightDtype dtype);

 private:
  struct Impl;
  explicit Linear(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pagoda
