// Randomized simulations of the scheduler and engine core with a fake model:
// thousands of requests with random prompt and output lengths, arrivals,
// priorities and cancellations under tight KV memory. Checked after every
// step and at the end: the budget holds, KV invariants hold, every request
// finishes or is cancelled, no page leaks, nobody waits without bound,
// preemptions happen and preempted requests produce the same tokens.
#include <map>
#include <random>

#include "tests/scheduler/test_support.h"

using namespace pagoda;
using namespace pagoda::testing;

namespace {

struct SimResult {
  std::map<RequestId, std::vector<int32_t>> outputs;  // finished (not cancelled) requests
  std::map<RequestId, FinishReason> reasons;
  int64_t preemptions = 0;
  int64_t max_wait_steps = 0;
  int64_t steps = 0;
  std::vector<int64_t> first_scheduled_step;  // per request, in arrival order; -1 = never
  std::vector<int> priorities;
};

struct SimSpec {
  int n_requests = 1500;
  int64_t num_pages = 48;
  int page_size = 16;
  int64_t max_num_seqs = 16;
  int64_t max_num_batched_tokens = 256;
  bool priority = false;
  double cancel_rate = 0.05;
  uint32_t seed = 1;
  bool prefix_caching = true;
};

SimResult simulate(const SimSpec& spec) {
  EngineCoreConfig cfg;
  cfg.scheduler.max_num_seqs = spec.max_num_seqs;
  cfg.scheduler.prefill_join_tokens = 16;
  cfg.scheduler.chunked_prefill = true;
  cfg.scheduler.max_num_batched_tokens = spec.max_num_batched_tokens;
  cfg.scheduler.priority_policy = spec.priority;
  cfg.scheduler.max_model_len = 512;
  auto stats = std::make_shared<EngineStats>();
  auto runner = std::make_unique<FakeRunner>(512, 61);
  FakeRunner* fake = runner.get();
  EngineCore core(cfg, make_kv(spec.page_size, spec.num_pages, spec.prefix_caching), std::move(runner), tok512(),
                  stats);

  std::mt19937 rng(spec.seed);
  std::uniform_int_distribution<int> prompt_len(1, 200), out_len(1, 120), token(3, 511), prio(0, 3);
  std::uniform_real_distribution<double> u(0, 1);
  struct Pending {
    std::shared_ptr<Request> req;
    std::shared_ptr<CollectingSink> sink;
    int64_t arrival_step;
    int64_t cancel_step;  // -1: never
  };
  std::vector<Pending> all;
  int64_t step_at = 0;
  for (int i = 0; i < spec.n_requests; ++i) {
    // Bursty arrivals, about one every 8 steps on average.
    step_at += int64_t(u(rng) * u(rng) * 32);
    std::vector<int32_t> prompt;
    const int n = prompt_len(rng);
    // A quarter share a 64-token prefix, to exercise prefix hits under pressure.
    if (i % 4 == 0)
      for (int k = 0; k < 64; ++k) prompt.push_back(3 + k);
    for (int k = 0; k < n; ++k) prompt.push_back(token(rng));
    auto sink = std::make_shared<CollectingSink>();
    auto req = make_request(RequestId(i + 1), prompt, out_len(rng), sink);
    req->priority = prio(rng);
    const int64_t cancel = u(rng) < spec.cancel_rate ? step_at + int64_t(u(rng) * 40) : -1;
    all.push_back({req, sink, step_at, cancel});
  }

  SimResult res;
  size_t next = 0;
  std::map<RequestId, int64_t> admitted_at;
  for (int64_t step = 0; step < 2'000'000; ++step) {
    while (next < all.size() && all[next].arrival_step <= step) {
      REQUIRE(core.validate(*all[next].req).is_ok());
      core.add(all[next].req);
      admitted_at[all[next].req->id] = step;
      ++next;
    }
    for (size_t i = 0; i < next; ++i)
      if (all[i].cancel_step == step) all[i].req->cancel();
    const int64_t before_tokens = stats->batch_tokens.snapshot().sum;
    core.step();
    const auto snap = stats->batch_tokens.snapshot();
    REQUIRE(snap.sum - before_tokens <= spec.max_num_batched_tokens);
    REQUIRE(core.num_running() <= spec.max_num_seqs);
    Status inv = core.kv().check_invariants();
    INFO("step " << step << ": " << inv.message());
    REQUIRE(inv.is_ok());
    res.first_scheduled_step.resize(all.size(), -1);
    for (size_t i = 0; i < next; ++i) {
      const Request& r = *all[i].req;
      if (r.times.first_scheduled == Clock::time_point{}) {
        if (!r.finished()) res.max_wait_steps = std::max(res.max_wait_steps, step - admitted_at[r.id]);
      } else if (res.first_scheduled_step[i] < 0) {
        res.first_scheduled_step[i] = step;
      }
    }
    if (next == all.size() && !core.has_work()) {
      res.steps = step;
      break;
    }
  }
  REQUIRE_FALSE(core.has_work());
  for (const Pending& p : all) {
    INFO("request " << p.req->id);
    REQUIRE(p.sink->finals == 1);  // exactly one final delta each
    REQUIRE(p.req->finished());
    res.reasons[p.req->id] = p.sink->finish;
    res.priorities.push_back(p.req->priority);
    if (p.sink->finish == FinishReason::kAbort) {
      CHECK(p.cancel_step >= 0);
    } else {
      CHECK((p.sink->finish == FinishReason::kStop || p.sink->finish == FinishReason::kLength));
      res.outputs[p.req->id] = p.sink->tokens;
      // The streamed tokens are exactly the generated ones.
      CHECK(p.sink->tokens ==
            std::vector<int32_t>(p.req->tokens.begin() + p.req->num_prompt_tokens, p.req->tokens.end()));
    }
  }
  const KvUsage usage = core.kv().usage();
  CHECK(usage.pages_in_use == 0);
  CHECK(usage.num_requests == 0);
  CHECK(usage.pages_free == usage.pages_total);
  res.preemptions = core.scheduler().total_preemptions();
  (void)fake;
  return res;
}

}  // namespace

TEST_CASE("simulation under tight KV memory: invariants, no leaks, everyone finishes") {
  SimSpec spec;
  SimResult tight = simulate(spec);
  INFO("steps " << tight.steps << " preemptions " << tight.preemptions << " max wait " << tight.max_wait_steps);
  CHECK(tight.preemptions > 0);
  // No starvation: FCFS starts requests in arrival order (a request cancelled
  // while waiting never starts), so nobody is overtaken.
  int64_t last = -1;
  for (int64_t s : tight.first_scheduled_step) {
    if (s < 0) continue;
    CHECK(s >= last);
    last = std::max(last, s);
  }

  SECTION("preempted requests produce the same tokens as with ample memory") {
    SimSpec ample = spec;
    ample.num_pages = 4096;
    ample.cancel_rate = 0;  // cancellations depend on timing; compare the rest
    SimSpec tight_nc = spec;
    tight_nc.cancel_rate = 0;
    SimResult a = simulate(ample), t = simulate(tight_nc);
    CHECK(a.preemptions == 0);
    CHECK(t.preemptions > 0);
    REQUIRE(a.outputs.size() == t.outputs.size());
    for (const auto& [id, toks] : a.outputs) {
      INFO("request " << id);
      CHECK(t.outputs[id] == toks);
    }
  }
}

TEST_CASE("simulation with the priority policy") {
  SimSpec spec;
  spec.priority = true;
  spec.n_requests = 800;
  spec.seed = 2;
  SimResult r = simulate(spec);
  CHECK(r.preemptions > 0);
  // Every priority class got served (the run ended with all finished).
  for (int p = 0; p <= 3; ++p) CHECK(std::count(r.priorities.begin(), r.priorities.end(), p) > 0);
}

TEST_CASE("simulation without prefix caching and with page size 8 and 64") {
  for (int page : {8, 64}) {
    SimSpec spec;
    spec.page_size = page;
    spec.num_pages = 768 / page;
    spec.n_requests = 500;
    spec.seed = 3 + page;
    spec.prefix_caching = page == 8;
    SimResult r = simulate(spec);
    CHECK(r.preemptions > 0);
    CHECK(r.outputs.size() > 400);  // all but the cancelled ones
  }
}
