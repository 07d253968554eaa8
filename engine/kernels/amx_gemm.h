// Batched matmul on AMX tiles (TDPBUSD for int8, TDPBF16PS for bf16) that
// reads oneDNN's packed matmul weights in place, like gemv.h, for the batch
// sizes above the panel kernels' 4 rows, up to large prefill chunks. Used only
// where the CPU exposes AMX (available()); elsewhere Linear runs gemv.h's
// chunked VNNI / AVX512_BF16 kernels.
//
// Why: oneDNN 2.6's AMX int8 matmul streams the weights once per 16-row
// block, at 5-6 GB/s for M = 17-64 (linear_bench), far below the memory
// bandwidth, although AMX itself does 2 int8 TOPS per core from L1.
//
// Layout: gemv.h's panel layout. One k block of a panel is 16 rows of 256
// bytes (16 k groups x 64 columns: s8 quads or bf16 pairs), and columns
// [16 j, 16 j + 16) of a row are the 64 bytes at 64 j, so a B tile (64 s8 or
// 32 bf16 k x 16 columns) is a tile load with stride 256.
//
// A call computes output panels [p0, p1) for m rows: for every pair of
// 16-row blocks and every 32-column half of a panel, four C tiles (2 x 2)
// accumulate over the whole K, loading two A and two B tiles per k block.
// Panels go in groups of 1 MB, and each row pair walks a whole group before
// the next starts, so the weights are read from memory once per call (the
// second half and later row pairs re-read them from L2) while a row pair's
// activations stay in L1. The first pass over a panel prefetches the k
// blocks 16 KB ahead (each k block is one 4-KB page, which the hardware
// prefetcher does not cross). Linear splits the panels over OpenMP threads.
//
// Activations: rows of kp u8 values (zero point 128; any value in the
// padding, the weights' padding is zero) or kp bf16 values (zero padded),
// stored by pack_row in A-tile order (for each 16-row block and 64-value k
// block, 16 x 64 contiguous bytes, so a tile load reads 1 KB in a row
// instead of 16 lines from 16 rows kp bytes apart, which for kp a power of
// two share a few L1 sets); the buffer holds padded_rows(m) rows (rows past
// m may hold anything; their results are dropped). Pure functions;
// thread-safe on disjoint outputs. Each call loads its tile configuration
// into the calling thread and leaves it there (oneDNN loads its own before
// every kernel).
#pragma once

#include <cstdint>
#include <cstring>

namespace pagoda::amx {

// Rows the activation buffer must hold for m rows.
constexpr int64_t padded_rows(int64_t m) { return (m + 31) / 32 * 32; }

// Stores activation row r (row_bytes: kp u8 or 2 kp bf16 values; a multiple
// of 64) into the A-tile ordered buffer x.
inline void pack_row(const void* row, int64_t r, int64_t row_bytes, void* x) {
  const auto* src = static_cast<const uint8_t*>(row);
  uint8_t* dst = static_cast<uint8_t*>(x) + (r / 16) * row_bytes * 16 + (r % 16) * 64;
  for (int64_t kb = 0; kb < row_bytes / 64; ++kb) std::memcpy(dst + kb * 1024, src + kb * 64, 64);
}

// True when the kernels' chosen instruction-set level is amx
// (kernel_table.h): the CPU has AMX-TILE/INT8/BF16 and Linux granted this
// process the tile data state.
bool available();

// s8 weights times u8 activations with exact s32 sums, then the Linear int8
// epilogue y[r, n] = (acc[r, n] - comp[n]) * x_scale[r] * w_scale[n] (the
// contract of gemv::s8_panels, plus the row padding above). Requires
// available().
void s8_panels(const int8_t* w, int64_t kp, const uint8_t* x, int64_t m, int64_t n_out, const float* x_scale,
               const float* w_scale, const int32_t* comp, float* y, int64_t ldy, int64_t p0, int64_t p1);

// bf16 weights times bf16 activations with f32 sums (the contract of
// gemv::bf16_panels, plus the row order and padding above). Requires
// available().
void bf16_panels(const uint16_t* w, int64_t kp, const uint16_t* x, int64_t m, int64_t n_out, float* y, int64_t ldy,
                 int64_t p0, int64_t p1);

}  // namespace pagoda::amx
