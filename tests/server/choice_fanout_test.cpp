// ChoiceFanout: which requests are submitted when (and how), what a failure
// cancels, and when a response is done.
#include "server/choice_fanout.h"

#include <catch2/catch.hpp>

namespace pagoda {
namespace {

std::vector<std::shared_ptr<Request>> make_requests(int count) {
  std::vector<std::shared_ptr<Request>> out;
  for (int i = 0; i < count; ++i)
    out.push_back(std::make_shared<Request>(static_cast<RequestId>(100 + i), std::vector<int32_t>{1, 2, 3},
                                            SamplingParams{}, StopParams{}, nullptr));
  return out;
}

RequestDelta delta(FinishReason finish = FinishReason::kNone, Status error = Status::ok()) {
  RequestDelta d;
  d.text = "x";
  d.finish = finish;
  d.error = std::move(error);
  return d;
}

// Records submissions: "first" ones through submit, "sibling" ones through
// submit_sibling; refuses the `refuse_at`-th call of either (1-based).
struct Recorder {
  std::vector<RequestId> firsts, siblings;
  int calls = 0, refuse_at = 0;
  ChoiceFanout::Submit first() {
    return [this](std::shared_ptr<Request> r) { return record(firsts, r); };
  }
  ChoiceFanout::Submit sibling() {
    return [this](std::shared_ptr<Request> r) { return record(siblings, r); };
  }
  Status record(std::vector<RequestId>& into, const std::shared_ptr<Request>& r) {
    if (++calls == refuse_at) return Status::resource_exhausted("queue full");
    into.push_back(r->id);
    return Status::ok();
  }
};

}  // namespace

TEST_CASE("choice fanout: each prompt's first choice goes at once, its siblings after its first delta") {
  auto requests = make_requests(6);  // 3 prompts x n = 2
  Recorder rec;
  ChoiceFanout fanout(requests, 2, rec.first(), rec.sibling());
  REQUIRE(fanout.submit_first().is_ok());
  CHECK(rec.firsts == std::vector<RequestId>{100, 102, 104});
  CHECK(rec.siblings.empty());
  fanout.on_delta(2, delta());  // prompt 1's first token
  CHECK(rec.siblings == std::vector<RequestId>{103});
  fanout.on_delta(2, delta());  // only once
  fanout.on_delta(0, delta(FinishReason::kStop));
  CHECK(rec.siblings == std::vector<RequestId>{103, 101});
  CHECK(fanout.first_finished());
  CHECK(fanout.prompt_of(5) == 2);
  CHECK_FALSE(fanout.done());
  fanout.on_delta(4, delta(FinishReason::kStop));  // prompt 2's first delta is its last
  CHECK(rec.siblings == std::vector<RequestId>{103, 101, 105});
  for (int i : {1, 2, 3}) fanout.on_delta(i, delta(FinishReason::kLength));
  CHECK_FALSE(fanout.done());
  fanout.on_delta(5, delta(FinishReason::kLength));
  CHECK(fanout.done());
  CHECK(fanout.failure().is_ok());
  for (const auto& r : requests) CHECK_FALSE(r->cancelled());
}

TEST_CASE("choice fanout: a failed choice or a refused submit cancels every request and submits nothing more") {
  auto requests = make_requests(4);  // 2 prompts x n = 2
  Recorder rec;
  rec.refuse_at = 3;  // the first sibling
  ChoiceFanout refused(requests, 2, rec.first(), rec.sibling());
  REQUIRE(refused.submit_first().is_ok());
  refused.on_delta(0, delta());
  CHECK(refused.done());
  CHECK(refused.failure().message() == "queue full");
  for (const auto& r : requests) CHECK(r->cancelled());
  refused.on_delta(2, delta());  // prompt 1's first token: its sibling is not submitted now
  CHECK(rec.siblings.empty());

  auto three = make_requests(3);
  Recorder rec2;
  ChoiceFanout failing(three, 3, rec2.first(), rec2.sibling());
  REQUIRE(failing.submit_first().is_ok());
  failing.on_delta(0, delta(FinishReason::kError, Status::internal("model step failed")));
  CHECK(rec2.siblings.empty());  // no siblings for a prompt whose first choice failed
  CHECK(failing.done());
  CHECK(failing.failure().message() == "model step failed");
  CHECK(three[2]->cancelled());

  Recorder rec3;
  rec3.refuse_at = 2;  // the second prompt's first choice
  auto batch = make_requests(3);
  ChoiceFanout refused_first(batch, 1, rec3.first(), rec3.sibling());
  CHECK_FALSE(refused_first.submit_first().is_ok());
  CHECK(batch[0]->cancelled());  // already submitted: cancelled

  Recorder rec4;
  ChoiceFanout aborted(make_requests(1), 1, rec4.first(), rec4.sibling());
  aborted.on_delta(0, delta(FinishReason::kAbort));
  CHECK(aborted.failure().code() == StatusCode::kUnavailable);
}

}  // namespace pagoda
