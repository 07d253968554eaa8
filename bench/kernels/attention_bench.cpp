// attention_bench: throughput of the fused paged attention kernel for decode
// (one query token per sequence) or prefill chunks (--query-tokens T: the
// last T positions of each context attend causally) at several context
// lengths and KV dtypes, in GB/s of KV bytes read (K and V rows plus scales)
// and GFLOP/s (QK and PV products, causal), one layer; by default
// bench-200m's head layout (16 query heads, 4 KV heads, head_dim 64).
//
//   attention_bench [--seqs 16] [--contexts 512,1024,2048,4096] [--runs 7] [--page-size 16]
//                   [--query-tokens 1] [--dtypes f32,bf16,f16,int8,int4]
//                   [--scatter-pages] [--evict-mb 0] [--shared-prefix 0 --share-group 2]
//                   [--heads 16] [--kv-heads 4] [--head-dim 64]
//
// Prints the median over --runs runs of 20 calls each. --scatter-pages gives
// every sequence pages in a shuffled order (as a long-running server's block
// tables look); --evict-mb N reads N MB of other memory before each call
// (untimed), so the KV comes from DRAM or L3 as it does in a model step,
// where the layer's weights stream through the caches between attentions;
// --shared-prefix N gives each group of --share-group sequences the same
// pages for their first N tokens (whole pages), as prefix caching does.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/kernels/attention/paged_attention.h"
#include "kvpool/kv_codec.h"

using namespace pagoda;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"attention_bench: paged attention decode throughput"};
  int seqs = 16, runs = 7, page_size = 16;
  std::string contexts = "512,1024,2048,4096";
  app.add_option("--seqs", seqs, "sequences per call");
  app.add_option("--contexts", contexts, "context lengths");
  app.add_option("--runs", runs, "runs (median reported)");
  app.add_option("--page-size", page_size, "tokens per page");
  int query_tokens = 1;
  app.add_option("--query-tokens", query_tokens, "query tokens per sequence (the last of its context)")
      ->check(CLI::PositiveNumber);
  std::string dtypes = "f32,bf16,f16,int8,int4";
  app.add_option("--dtypes", dtypes, "KV dtypes");
  int H = 16, KVH = 4, D = 64;
  app.add_option("--heads", H, "query heads")->check(CLI::PositiveNumber);
  app.add_option("--kv-heads", KVH, "KV heads (a divisor of --heads)")->check(CLI::PositiveNumber);
  app.add_option("--head-dim", D, "head_dim")->check(CLI::PositiveNumber);
  int shared_prefix = 0, share_group = 2;
  app.add_option("--shared-prefix", shared_prefix,
                 "tokens at the start (whole pages) that each --share-group sequences share")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--share-group", share_group, "sequences per shared prefix")->check(CLI::PositiveNumber);
  bool scatter = false;
  app.add_flag("--scatter-pages", scatter, "shuffle the pages of the page tables");
  int evict_mb = 0;
  app.add_option("--evict-mb", evict_mb, "MB of other memory read before each call")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  std::vector<int> ctx;
  {
    std::stringstream ss(contexts);
    std::string item;
    while (std::getline(ss, item, ',')) ctx.push_back(std::stoi(item));
  }
  if (H % KVH != 0) {
    std::fprintf(stderr, "--heads must be a multiple of --kv-heads\n");
    return 2;
  }
  std::printf("%6s %6s %10s %12s %10s %10s\n", "dtype", "ctx", "us/call", "KV GB/s", "tokens/s", "GFLOP/s");
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> evict(static_cast<size_t>(evict_mb) * (1 << 20) / sizeof(float), 1.0f);
  float evict_sum = 0;
  auto evict_caches = [&] {
    float acc = 0;
    for (size_t i = 0; i < evict.size(); i += 16) acc += evict[i];
    evict_sum += acc;
  };
  for (KvDtype dt : {KvDtype::kF32, KvDtype::kBF16, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4}) {
    if (("," + dtypes + ",").find("," + std::string(kv_dtype_name(dt)) + ",") == std::string::npos) continue;
    for (int L : ctx) {
      if (query_tokens > L) continue;
      const int64_t pages_per_seq = (L + page_size - 1) / page_size;
      auto st = KvStorage::create({1, KVH, D, page_size, dt}, 1 + pages_per_seq * seqs);
      if (!st) return 1;
      KvStorage& kv = **st;
      std::vector<float> k(KVH * D), v(KVH * D);
      std::vector<int32_t> pages(static_cast<size_t>(pages_per_seq * seqs));
      for (size_t i = 0; i < pages.size(); ++i) pages[i] = int32_t(1 + i);
      if (scatter) std::shuffle(pages.begin(), pages.end(), rng);
      std::vector<std::vector<int32_t>> tables(static_cast<size_t>(seqs));
      for (int s = 0; s < seqs; ++s)
        for (int64_t p = 0; p < pages_per_seq; ++p) {
          // The first shared_prefix / page_size pages are those of the group's first sequence.
          const int owner = p < shared_prefix / page_size ? s - s % share_group : s;
          tables[size_t(s)].push_back(pages[size_t(owner * pages_per_seq + p)]);
        }
      for (int s = 0; s < seqs; ++s)
        for (int pos = 0; pos < L; ++pos) {
          for (auto& x : k) x = nd(rng);
          for (auto& x : v) x = nd(rng);
          kv.write(0, tables[size_t(s)][size_t(pos / page_size)] * page_size + pos % page_size, k.data(), v.data());
        }
      std::vector<AttentionSeq> aseqs;
      for (int s = 0; s < seqs; ++s)
        aseqs.push_back({tables[size_t(s)], L - query_tokens, query_tokens, int64_t(s) * query_tokens});
      std::vector<float> q(size_t(seqs) * query_tokens * H * D), out(q.size());
      for (auto& x : q) x = nd(rng);
      const AttentionShape shape{H, KVH, D, 0, 1.0f / std::sqrt(float(D))};
      std::vector<double> us;
      for (int r = 0; r < runs; ++r) {
        double total = 0;
        for (int i = 0; i < 20; ++i) {
          if (evict_mb > 0) evict_caches();
          const auto t0 = Clock::now();
          paged_attention(kv, 0, aseqs, q.data(), H * D, out.data(), H * D, shape);
          total += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
        }
        us.push_back(total / 20);
      }
      std::sort(us.begin(), us.end());
      const double t = us[us.size() / 2];
      const double bytes = double(seqs) * L * KVH * 2 * (kv_row_bytes(dt, D) + (kv.layout().has_scales() ? 4 : 0));
      // Query token i (of T) sees L - T + 1 + i keys: 2 products of 2 * D flops per head and key.
      const double keys = double(query_tokens) * (L - query_tokens + 1) + double(query_tokens) * (query_tokens - 1) / 2;
      const double flops = double(seqs) * H * keys * 4 * D;
      std::printf("%6s %6d %10.1f %12.2f %10.0f %10.1f\n", kv_dtype_name(dt), L, t, bytes / (t * 1e3),
                  seqs * query_tokens / (t / 1e6), flops / (t * 1e3));
      std::fflush(stdout);
    }
  }
  if (evict_sum < 0) std::printf("%f\n", evict_sum);  // keeps the eviction reads
  return 0;
}
