// The engine thread under concurrent use: many threads submit and cancel at
// once; every request gets exactly one final delta, nothing leaks, the queue
// bound and draining refuse with the right status, and stop() aborts the
// rest. Runs under ThreadSanitizer in tools/test.sh (label "concurrency").
#include <atomic>
#include <random>
#include <thread>

#include "scheduler/engine_loop.h"
#include "tests/scheduler/test_support.h"

using namespace pagoda;
using namespace pagoda::testing;

namespace {

std::unique_ptr<EngineLoop> make_loop(int64_t num_pages, int64_t max_queue, const KvCacheManager** kv_out = nullptr) {
  EngineCoreConfig cfg;
  cfg.scheduler.max_num_seqs = 8;
  cfg.scheduler.prefill_join_tokens = 16;
  cfg.scheduler.chunked_prefill = true;
  cfg.scheduler.max_num_batched_tokens = 128;
  cfg.scheduler.max_model_len = 512;
  auto kv = make_kv(16, num_pages);
  if (kv_out) *kv_out = kv.get();
  auto core = std::make_unique<EngineCore>(cfg, std::move(kv), std::make_unique<FakeRunner>(512), tok512(),
                                           std::make_shared<EngineStats>());
  return std::make_unique<EngineLoop>(std::move(core), 1, max_queue);
}

}  // namespace

TEST_CASE("engine loop: concurrent submits and cancels, each request ends exactly once") {
  const KvCacheManager* kv = nullptr;
  auto loop = make_loop(64, 100000, &kv);
  loop->start();
  constexpr int kThreads = 6, kPerThread = 40;
  std::vector<std::shared_ptr<CollectingSink>> sinks(kThreads * kPerThread);
  std::vector<std::shared_ptr<Request>> requests(sinks.size());
  std::atomic<uint64_t> next_id{1};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kPerThread; ++i) {
        const size_t k = size_t(t * kPerThread + i);
        sinks[k] = std::make_shared<CollectingSink>();
        std::vector<int32_t> prompt(1 + rng() % 60);
        for (auto& x : prompt) x = int32_t(3 + rng() % 500);
        // The canceller reads requests[k] concurrently: publish it atomically.
        auto request = make_request(next_id++, prompt, 1 + rng() % 40, sinks[k]);
        std::atomic_store(&requests[k], request);
        REQUIRE(loop->submit(request).is_ok());
        if (rng() % 5 == 0) request->cancel();  // some right away
      }
    });
  // Another thread cancels requests while they run.
  std::thread canceller([&] {
    std::mt19937 rng(99);
    for (int i = 0; i < 200; ++i) {
      const size_t k = rng() % requests.size();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      if (auto r = std::atomic_load(&requests[k])) r->cancel();
    }
  });
  for (auto& t : threads) t.join();
  canceller.join();
  REQUIRE(loop->wait_idle(std::chrono::seconds(60)));
  for (size_t k = 0; k < sinks.size(); ++k) {
    INFO("request " << k);
    CHECK(sinks[k]->done());
    CHECK(sinks[k]->finals == 1);
  }
  CHECK(loop->num_unfinished() == 0);
  loop->stop();
  CHECK(kv->usage().pages_in_use == 0);
}

TEST_CASE("engine loop: the queue bound refuses with ResourceExhausted, draining with Unavailable") {
  auto loop = make_loop(64, 2);
  // Not started: submitted requests stay queued.
  auto s = std::make_shared<CollectingSink>();
  CHECK(loop->submit(make_request(1, {5, 6}, 4, s)).is_ok());
  CHECK(loop->submit(make_request(2, {5, 6}, 4, s)).is_ok());
  Status full = loop->submit(make_request(3, {5, 6}, 4, s));
  CHECK(full.code() == StatusCode::kResourceExhausted);
  CHECK_THAT(full.message(), Catch::Contains("scheduler.max_queue"));
  CHECK(loop->stats().rejected_queue_full.value() == 1);
  loop->begin_drain();
  CHECK(loop->submit(make_request(4, {5, 6}, 4, s)).code() == StatusCode::kUnavailable);
  loop->start();
  CHECK(loop->wait_idle(std::chrono::seconds(10)));
  CHECK(s->finals == 2);
  loop->stop();
}

TEST_CASE("engine loop: stop() aborts unfinished requests with a final delta") {
  auto loop = make_loop(64, 100);
  auto s = std::make_shared<CollectingSink>();
  auto req = make_request(1, {5, 6, 7}, 400, s);
  req->stop.max_tokens = 400;
  REQUIRE(loop->submit(req).is_ok());
  loop->start();
  loop->stop();
  CHECK(s->finals == 1);
  CHECK((s->finish == FinishReason::kAbort || s->finish == FinishReason::kLength));
}
