// Shared pieces of the scheduler tests: a sink that records deltas, a fake
// model runner with deterministic "next tokens", and request builders.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kvpool/kv_cache_manager.h"
#include "kvpool/kv_storage.h"
#include "scheduler/engine_core.h"
#include "tokenizer/tokenizer.h"

namespace pagoda::testing {

inline std::string model_file(const std::string& name) {
  for (const std::string& dir :
       {std::string(PAGODA_SOURCE_DIR) + "/models/", std::string(PAGODA_SOURCE_DIR) + "/../shared/models/"})
    if (std::filesystem::exists(dir + name)) return dir + name;
  FAIL("test data " << name << " not found in models/ or ../shared/models/ (run tools/setup.sh)");
  return "";
}

inline std::shared_ptr<const Tokenizer> tok512() {
  static std::shared_ptr<const Tokenizer> tok = [] {
    auto t = load_tokenizer(model_file("tok512.bin"));
    REQUIRE(t.is_ok());
    return std::shared_ptr<const Tokenizer>(std::move(t).value());
  }();
  return tok;
}

// Records every delta; thread-safe.
class CollectingSink final : public RequestSink {
 public:
  void on_delta(RequestDelta d) override {
    std::lock_guard<std::mutex> lock(mu_);
    text += d.text;
    tokens.insert(tokens.end(), d.token_ids.begin(), d.token_ids.end());
    deltas++;
    if (d.finish != FinishReason::kNone) {
      finals++;
      finish = d.finish;
      error = d.error;
      completion_tokens = d.completion_tokens;
      cached_tokens = d.cached_tokens;
    }
  }
  bool done() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finals > 0;
  }
  mutable std::mutex mu_;
  std::string text;
  std::vector<int32_t> tokens;
  int deltas = 0, finals = 0;
  FinishReason finish = FinishReason::kNone;
  Status error;
  int64_t completion_tokens = 0, cached_tokens = 0;
};

// Next token = a hash of (first prompt token, previous token, position), so
// a recomputed sequence (after preemption) continues exactly as before.
// Every `eos_every`-th hash value yields EOS (id 2). Checks that each
// scheduled token has a page.
class FakeRunner final : public ModelRunner {
 public:
  explicit FakeRunner(int32_t vocab, uint64_t eos_every = 0) : vocab_(vocab), eos_every_(eos_every) {}
  int32_t vocab_size() const override { return vocab_; }
  Status run(const SchedulerOutput& step, const KvCacheManager& kv, std::vector<float>* logits,
             std::vector<float>* hidden) override {
    logits->clear();
    hidden->clear();
    steps++;
    for (const ScheduledSeq& s : step.seqs) {
      const Request& r = *s.request;
      const auto& table = kv.page_table(r.id);
      const int64_t end = r.num_computed_tokens + s.num_new_tokens;
      if (int64_t(table.size()) * kv.page_size() < end)
        return Status::internal("page table too short for request " + std::to_string(r.id));
      for (int64_t p = r.num_computed_tokens; p < end; ++p)
        if (table[size_t(p / kv.page_size())] == kNullPage)
          return Status::internal("null page under a scheduled token");
      if (!s.sample) continue;
      const int32_t next = next_token(r.tokens[0], r.tokens.back(), end);
      logits->resize(logits->size() + size_t(vocab_), 0.0f);
      (*logits)[logits->size() - size_t(vocab_) + size_t(next)] = 10.0f;
    }
    return Status::ok();
  }
  int32_t next_token(int32_t first, int32_t prev, int64_t pos) const {
    uint64_t h = uint64_t(first) * 0x9E3779B97F4A7C15ull ^ uint64_t(prev) * 0xC2B2AE3D27D4EB4Full ^ uint64_t(pos);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    if (eos_every_ > 0 && h % eos_every_ == 0) return 2;
    return int32_t(3 + h % uint64_t(vocab_ - 3));
  }
  int64_t steps = 0;

 private:
  int32_t vocab_;
  uint64_t eos_every_;
};

inline SamplingParams greedy_params() {
  SamplingParams p;
  p.temperature = 0;
  return p;
}

inline std::shared_ptr<Request> make_request(RequestId id, std::vector<int32_t> prompt, int64_t max_tokens,
                                             std::shared_ptr<RequestSink> sink,
                                             SamplingParams sampling = greedy_params()) {
  StopParams stop;
  stop.max_tokens = max_tokens;
  return std::make_shared<Request>(id, std::move(prompt), sampling, stop, std::move(sink));
}

// storage: where partial-page prefix hits copy rows (none: whole pages only).
inline std::unique_ptr<KvCacheManager> make_kv(int page_size, int64_t num_pages, bool prefix_caching = true,
                                               KvStorage* storage = nullptr) {
  KvCacheConfig c;
  c.page_size = page_size;
  c.num_pages = num_pages;
  c.enable_prefix_caching = prefix_caching;
  if (storage) c.copy_rows = storage->row_copier();
  auto kv = KvCacheManager::create(c);
  REQUIRE(kv.is_ok());
  return std::move(kv).value();
}

}  // namespace pagoda::testing
