// The scheduler's prefill-join rule (SchedulerConfig::prefill_join_tokens):
// a waiting prompt joins a step that already computes another prompt only if
// its new tokens are at most the step's decode tokens plus the setting.
#include <vector>

#include "scheduler/scheduler.h"
#include "tests/scheduler/test_support.h"

using namespace pagoda;
using namespace pagoda::testing;

namespace {

std::vector<int32_t> prompt_of(int n, int32_t first) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(first + i);
  return p;
}

// Request ids scheduled in `out`, with their token counts.
std::vector<std::pair<RequestId, int64_t>> plan(const SchedulerOutput& out) {
  std::vector<std::pair<RequestId, int64_t>> v;
  for (const ScheduledSeq& s : out.seqs) v.emplace_back(s.request->id, s.num_new_tokens);
  return v;
}

using Plan = std::vector<std::pair<RequestId, int64_t>>;

// Runs one step: the scheduler's plan, then each sampled request gets a token.
SchedulerOutput step(Scheduler& s) {
  SchedulerOutput out = s.schedule();
  s.on_step_done(out);
  for (const ScheduledSeq& q : out.seqs)
    if (q.sample) q.request->tokens.push_back(7);
  return out;
}

SchedulerConfig config(int64_t join) {
  SchedulerConfig c;
  c.max_num_seqs = 64;
  c.max_num_batched_tokens = 256;
  c.max_model_len = 512;
  c.prefill_join_tokens = join;
  c.chunked_prefill = true;
  return c;
}

}  // namespace

TEST_CASE("simultaneous long prompts are prefilled one per step, short ones share a step") {
  auto kv = make_kv(16, 64);
  Scheduler s(config(16), kv.get());
  auto a = make_request(1, prompt_of(40, 10), 8, nullptr);
  auto b = make_request(2, prompt_of(40, 100), 8, nullptr);
  auto c = make_request(3, prompt_of(12, 200), 8, nullptr);  // 12 <= 16 + 0 decodes
  s.add(a);
  s.add(b);
  s.add(c);
  CHECK(plan(step(s)) == Plan{{1, 40}});                   // b (40 > 16) waits; so does c behind it (FCFS)
  CHECK(plan(step(s)) == Plan{{1, 1}, {2, 40}, {3, 12}});  // b first; then c joins (12 <= 1 + 16)
  CHECK(plan(step(s)) == Plan{{1, 1}, {2, 1}, {3, 1}});
  for (auto& r : {a, b, c}) s.finish(r.get(), FinishReason::kLength);
  CHECK(kv->usage().pages_in_use == 0);
}

TEST_CASE("decode tokens in the step raise the bar a prompt must clear to join") {
  auto kv = make_kv(16, 64);
  Scheduler s(config(16), kv.get());
  std::vector<std::shared_ptr<Request>> decoding;
  for (int i = 0; i < 30; ++i) {
    decoding.push_back(make_request(RequestId(10 + i), prompt_of(1, 300 + i), 50, nullptr));
    s.add(decoding.back());
  }
  step(s);  // 30 one-token prompts: all in one step (1 <= 16 each)
  CHECK(s.running().size() == 30);
  auto a = make_request(1, prompt_of(40, 10), 8, nullptr);
  auto b = make_request(2, prompt_of(40, 100), 8, nullptr);
  s.add(a);
  s.add(b);
  const SchedulerOutput out = step(s);  // 30 decodes: 40 <= 30 + 16, so both prompts fit one step
  CHECK(out.seqs.size() == 32);
  CHECK(out.num_tokens == 30 + 80);
}

TEST_CASE("prefill_join_tokens at the budget packs steps first-come-first-served") {
  auto kv = make_kv(16, 64);
  Scheduler s(config(256), kv.get());
  auto a = make_request(1, prompt_of(40, 10), 8, nullptr);
  auto b = make_request(2, prompt_of(300, 100), 8, nullptr);
  s.add(a);
  s.add(b);
  CHECK(plan(step(s)) == Plan{{1, 40}, {2, 216}});  // b's first chunk fills the budget
}

TEST_CASE("a deferred request holds no pages and is looked up once, when it runs") {
  auto kv = make_kv(16, 64);
  Scheduler s(config(16), kv.get());
  // r0 computes a 64-token prefix (four full pages) and finishes: its pages stay cached.
  auto r0 = make_request(1, prompt_of(64, 10), 1, nullptr);
  s.add(r0);
  step(s);
  s.finish(r0.get(), FinishReason::kLength);
  const int64_t queried = kv->usage().prefix_query_tokens;
  // A long cold prompt, then two that hit the prefix and add 30 new tokens each.
  auto cold = make_request(2, prompt_of(100, 400), 4, nullptr);
  std::vector<int32_t> p1 = prompt_of(64, 10), p2 = prompt_of(64, 10);
  for (int i = 0; i < 30; ++i) {
    p1.push_back(600 + i);
    p2.push_back(700 + i);
  }
  auto h1 = make_request(3, p1, 4, nullptr);
  auto h2 = make_request(4, p2, 4, nullptr);
  s.add(cold);
  s.add(h1);
  s.add(h2);
  CHECK(plan(step(s)) == Plan{{2, 100}});  // h1 (30 new > 16) waits
  CHECK(kv->usage().num_requests == 1);    // and holds no pages meanwhile
  CHECK(h1->num_computed_tokens == 0);
  CHECK(plan(step(s)) == Plan{{2, 1}, {3, 30}});  // h2: 30 > 1 + 16, waits
  CHECK(plan(step(s)) == Plan{{2, 1}, {3, 1}, {4, 30}});
  CHECK(h1->num_cached_tokens == 64);
  CHECK(h2->num_cached_tokens == 64);
  // Each prompt was looked up once, hits counted once.
  const KvUsage u = kv->usage();
  CHECK(u.prefix_query_tokens - queried == 100 + 94 + 94);
  for (auto& r : {cold, h1, h2}) s.finish(r.get(), FinishReason::kLength);
  CHECK(kv->usage().pages_in_use == 0);
}

TEST_CASE("a request waiting for free pages is counted in the prefix statistics once, when it runs") {
  auto kv = make_kv(16, 9);  // 8 usable pages
  Scheduler s(config(16), kv.get());
  // r0 (80 prompt tokens, then decoding) holds 6 pages; r1's 72-token prompt
  // (2 pages shared with r0's prefix and 3 of its own) does not fit until r0
  // finishes.
  std::vector<int32_t> p1 = prompt_of(32, 10);
  for (int i = 0; i < 40; ++i) p1.push_back(900 + i);
  auto r0 = make_request(1, prompt_of(80, 10), 12, nullptr);
  auto r1 = make_request(2, p1, 4, nullptr);
  s.add(r0);
  CHECK(plan(step(s)) == Plan{{1, 80}});
  const KvUsage start = kv->usage();
  s.add(r1);
  for (int i = 0; i < 6; ++i) CHECK(plan(step(s)) == Plan{{1, 1}});  // r1 cannot get its pages
  CHECK(kv->usage().prefix_query_tokens == start.prefix_query_tokens);
  CHECK(kv->usage().prefix_hit_tokens == start.prefix_hit_tokens);
  CHECK(kv->usage().num_requests == 1);
  s.finish(r0.get(), FinishReason::kLength);
  CHECK(plan(step(s)) == Plan{{2, 40}});
  CHECK(r1->num_cached_tokens == 32);
  const KvUsage u = kv->usage();
  CHECK(u.prefix_query_tokens - start.prefix_query_tokens == 72);
  CHECK(u.prefix_hit_tokens - start.prefix_hit_tokens == 32);
  s.finish(r1.get(), FinishReason::kLength);
  CHECK(kv->usage().pages_in_use == 0);
}

TEST_CASE("prompts deferred behind one with the same prefix reuse its pages") {
  auto kv = make_kv(16, 64);
  Scheduler s(config(16), kv.get());
  // Two simultaneous prompts share a 64-token prefix nobody has computed yet.
  std::vector<int32_t> pa = prompt_of(64, 10), pb = prompt_of(64, 10);
  for (int i = 0; i < 30; ++i) pa.push_back(600 + i);
  for (int i = 0; i < 20; ++i) pb.push_back(700 + i);
  auto a = make_request(1, pa, 4, nullptr);
  auto b = make_request(2, pb, 4, nullptr);
  s.add(a);
  s.add(b);
  CHECK(plan(step(s)) == Plan{{1, 94}});          // b (84 new) waits
  CHECK(plan(step(s)) == Plan{{1, 1}, {2, 20}});  // and then finds a's prefix pages cached
  CHECK(b->num_cached_tokens == 64);
  for (auto& r : {a, b}) s.finish(r.get(), FinishReason::kLength);
  CHECK(kv->usage().pages_in_use == 0);
}

TEST_CASE("with chunked prefill off a prompt over the leftover budget waits without holding pages") {
  auto kv = make_kv(16, 64);
  SchedulerConfig c = config(256);
  c.chunked_prefill = false;
  c.max_num_batched_tokens = 128;
  Scheduler s(c, kv.get());
  auto r0 = make_request(1, prompt_of(64, 10), 1, nullptr);
  s.add(r0);
  step(s);
  s.finish(r0.get(), FinishReason::kLength);
  auto a = make_request(2, prompt_of(100, 400), 4, nullptr);
  std::vector<int32_t> pb = prompt_of(64, 10);
  for (int i = 0; i < 60; ++i) pb.push_back(700 + i);
  auto b = make_request(3, pb, 4, nullptr);  // 124 tokens, 64 cached: 60 new > 28 left
  s.add(a);
  s.add(b);
  CHECK(plan(step(s)) == Plan{{2, 100}});
  CHECK(kv->usage().num_requests == 1);  // b gave its prefix references back
  CHECK(plan(step(s)) == Plan{{2, 1}, {3, 60}});
  CHECK(b->num_cached_tokens == 64);
}
