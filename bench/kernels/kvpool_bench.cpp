// kvpool_bench: cost of the KV page bookkeeping and row codecs.
//   alloc/free      allocate_slots for 64 requests x 2048 tokens, then free them
//                   (per page; the pool holds cached pages, so allocation also evicts)
//   cache           cache_full_pages (hash + index insert), per page
//   lookup hit      lookup_prefix of a cached 2048-token prompt, per page hit
//                   (hash + verify + take a reference), and the free after it
//   decode rows     decode_row of one 128-value row per dtype (the attention hot path)
// Each figure is the median of 7 runs. Single-threaded.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "kvpool/kv_cache_manager.h"
#include "kvpool/kv_codec.h"

using namespace pagoda;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double ns_since(Clock::time_point t0) { return std::chrono::duration<double, std::nano>(Clock::now() - t0).count(); }

constexpr int kPageSize = 16;
constexpr int kRequests = 64;
constexpr int64_t kTokens = 2048;
constexpr int64_t kPagesPerRequest = kTokens / kPageSize;
constexpr int kRuns = 7;

std::vector<int32_t> prompt(uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(kTokens));
  for (auto& x : t) x = static_cast<int32_t>(rng() % 32000);
  return t;
}

}  // namespace

int main() {
  KvCacheConfig cfg;
  cfg.page_size = kPageSize;
  cfg.num_pages = 1 + kRequests * kPagesPerRequest + 64;
  auto made = KvCacheManager::create(cfg);
  if (!made) {
    std::fprintf(stderr, "%s\n", made.status().to_string().c_str());
    return 1;
  }
  KvCacheManager& m = **made;
  std::vector<std::vector<int32_t>> prompts;
  for (int r = 0; r < kRequests; ++r) prompts.push_back(prompt(static_cast<uint32_t>(r)));

  std::vector<double> alloc_ns, free_ns, cache_ns, lookup_ns, lookup_free_ns;
  const double pages = static_cast<double>(kRequests * kPagesPerRequest);
  RequestId id = 1;
  for (int run = 0; run < kRuns; ++run) {
    const RequestId base = id;
    auto t0 = Clock::now();
    for (int r = 0; r < kRequests; ++r) {
      if (!m.allocate_slots(base + static_cast<RequestId>(r), kTokens)) return 2;
    }
    alloc_ns.push_back(ns_since(t0) / pages);
    t0 = Clock::now();
    for (int r = 0; r < kRequests; ++r)
      m.cache_full_pages(base + static_cast<RequestId>(r), prompts[static_cast<size_t>(r)], kTokens);
    cache_ns.push_back(ns_since(t0) / pages);
    t0 = Clock::now();
    for (int r = 0; r < kRequests; ++r) m.free(base + static_cast<RequestId>(r));
    free_ns.push_back(ns_since(t0) / pages);
    id += kRequests;

    // All 64 prompts are cached now: look them up again (127 pages hit each).
    const RequestId lb = id;
    int64_t hit = 0;
    t0 = Clock::now();
    for (int r = 0; r < kRequests; ++r)
      hit += m.lookup_prefix(lb + static_cast<RequestId>(r), prompts[static_cast<size_t>(r)]);
    const double hit_pages = static_cast<double>(hit / kPageSize);
    lookup_ns.push_back(ns_since(t0) / hit_pages);
    t0 = Clock::now();
    for (int r = 0; r < kRequests; ++r) m.free(lb + static_cast<RequestId>(r));
    lookup_free_ns.push_back(ns_since(t0) / hit_pages);
    id += kRequests;
    if (hit != kRequests * (kTokens - kPageSize)) {
      std::fprintf(stderr, "unexpected hit count %lld\n", static_cast<long long>(hit));
      return 3;
    }
  }
  if (!m.check_invariants().is_ok()) return 4;

  std::printf("kvpool bookkeeping (page_size %d, %d requests x %lld tokens, %d runs, median)\n", kPageSize, kRequests,
              static_cast<long long>(kTokens), kRuns);
  std::printf("  allocate_slots (incl. eviction)  %7.1f ns/page\n", median(alloc_ns));
  std::printf("  cache_full_pages                 %7.1f ns/page\n", median(cache_ns));
  std::printf("  free                             %7.1f ns/page\n", median(free_ns));
  std::printf("  lookup_prefix hit                %7.1f ns/page\n", median(lookup_ns));
  std::printf("  free after lookup                %7.1f ns/page\n", median(lookup_free_ns));

  // Row decode, head_dim 128, 4096 distinct rows so the data comes from L2.
  constexpr int kDim = 128, kRows = 4096, kReps = 50;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2, 2);
  std::vector<float> src(static_cast<size_t>(kDim) * kRows), out(kDim);
  for (auto& x : src) x = u(rng);
  std::printf("decode_row, head_dim %d (%d rows x %d reps, median of %d)\n", kDim, kRows, kReps, kRuns);
  for (KvDtype d : {KvDtype::kF32, KvDtype::kBF16, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4}) {
    const size_t rb = kv_row_bytes(d, kDim);
    std::vector<uint8_t> enc(rb * kRows);
    std::vector<float> scales(kRows);
    std::vector<double> ens;
    for (int run = 0; run < kRuns; ++run) {
      auto te = Clock::now();
      for (int r = 0; r < kRows; ++r)
        encode_row(d, src.data() + static_cast<size_t>(r) * kDim, kDim, enc.data() + r * rb,
                   &scales[static_cast<size_t>(r)]);
      ens.push_back(ns_since(te) / kRows);
    }
    const double enc_ns = median(ens);
    std::vector<double> ns;
    float sink = 0;
    for (int run = 0; run < kRuns; ++run) {
      auto t0 = Clock::now();
      for (int rep = 0; rep < kReps; ++rep)
        for (int r = 0; r < kRows; ++r) {
          decode_row(d, enc.data() + r * rb, scales[static_cast<size_t>(r)], kDim, out.data());
          sink += out[static_cast<size_t>(r % kDim)];
        }
      ns.push_back(ns_since(t0) / (kReps * kRows));
    }
    const double med = median(ns);
    std::printf("  %-5s decode %6.1f ns/row (%5.1f GB/s of output)   encode %6.1f ns/row   [%g]\n", kv_dtype_name(d),
                med, kDim * 4.0 / med, enc_ns, static_cast<double>(sink) * 0.0);
  }
  return 0;
}
