// ChoiceFanout: which requests are submitted when, and when a response is done.
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

}  // namespace

TEST_CASE("choice fanout: each prompt's first choice goes at once, its siblings after its first delta") {
  auto requests = make_requests(6);  // 3 prompts x n = 2
  std::vector<RequestId> submitted;
  ChoiceFanout fanout(requests, 2, [&](std::shared_ptr<Request> r) {
    submitted.push_back(r->id);
    return Status::ok();
  });
  REQUIRE(fanout.submit_first().is_ok());
  CHECK(submitted == std::vector<RequestId>{100, 102, 104});
  fanout.on_delta(2, delta());  // prompt 1's first token
  CHECK(submitted == std::vector<RequestId>{100, 102, 104, 103});
  fanout.on_delta(2, delta());  // only once
  fanout.on_delta(0, delta(FinishReason::kStop));
  CHECK(submitted == std::vector<RequestId>{100, 102, 104, 103, 101});
  CHECK(fanout.prompt_of(5) == 2);
  CHECK_FALSE(fanout.done());
  for (int i : {1, 2, 3, 5}) fanout.on_delta(i, delta(FinishReason::kLength));
  CHECK_FALSE(fanout.done());
  fanout.on_delta(4, delta(FinishReason::kStop));  // prompt 2's first delta is its last
  CHECK(submitted.size() == 6);
  CHECK(fanout.done());
  CHECK(fanout.failure().is_ok());
}

TEST_CASE("choice fanout: a failed choice or a refused submit ends the response with that error") {
  auto requests = make_requests(4);  // 1 prompt x n = 4
  int calls = 0;
  ChoiceFanout refused(requests, 4, [&](std::shared_ptr<Request>) {
    return ++calls == 3 ? Status::resource_exhausted("queue full") : Status::ok();
  });
  REQUIRE(refused.submit_first().is_ok());
  refused.on_delta(0, delta());
  CHECK(calls == 3);  // stops at the refusal
  CHECK(refused.done());
  CHECK(refused.failure().message() == "queue full");

  std::vector<RequestId> submitted;
  ChoiceFanout failing(make_requests(3), 3, [&](std::shared_ptr<Request> r) {
    submitted.push_back(r->id);
    return Status::ok();
  });
  REQUIRE(failing.submit_first().is_ok());
  failing.on_delta(0, delta(FinishReason::kError, Status::internal("model step failed")));
  CHECK(submitted.size() == 1);  // no siblings for a prompt whose first choice failed
  CHECK(failing.done());
  CHECK(failing.failure().message() == "model step failed");
  ChoiceFanout aborted(make_requests(1), 1, [](std::shared_ptr<Request>) { return Status::ok(); });
  aborted.on_delta(0, delta(FinishReason::kAbort));
  CHECK(aborted.failure().code() == StatusCode::kUnavailable);
}

}  // namespace pagoda
