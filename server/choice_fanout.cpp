#include "server/choice_fanout.h"

#include <utility>

namespace pagoda {

ChoiceFanout::ChoiceFanout(std::vector<std::shared_ptr<Request>> requests, int n, Submit submit, Submit submit_sibling)
    : requests_(std::move(requests)), n_(n), submit_(std::move(submit)), submit_sibling_(std::move(submit_sibling)),
      siblings_submitted_((requests_.size() + static_cast<size_t>(n) - 1) / static_cast<size_t>(n), n == 1) {}

Status ChoiceFanout::submit_first() {
  for (size_t i = 0; i < requests_.size(); i += static_cast<size_t>(n_))
    if (Status st = submit_(requests_[i]); !st.is_ok()) {
      fail(st);
      return st;
    }
  return Status::ok();
}

void ChoiceFanout::fail(Status status) {
  if (!failure_.is_ok()) return;
  failure_ = std::move(status);
  for (const auto& r : requests_) r->cancel();  // cancelling a finished or unsubmitted request does nothing
}

void ChoiceFanout::on_delta(int index, const RequestDelta& delta) {
  const bool failed = delta.finish == FinishReason::kError || delta.finish == FinishReason::kAbort;
  const auto prompt = static_cast<size_t>(prompt_of(index));
  if (first_of_prompt(index) && !siblings_submitted_[prompt] && !failed && failure_.is_ok()) {
    siblings_submitted_[prompt] = true;
    for (size_t i = prompt * static_cast<size_t>(n_) + 1; i < (prompt + 1) * static_cast<size_t>(n_); ++i) {
      if (Status st = submit_sibling_(requests_[i]); !st.is_ok()) {
        fail(st);
        break;
      }
    }
  }
  if (delta.finish == FinishReason::kNone) return;
  ++finished_;
  if (index == 0) first_finished_ = true;
  if (failed) fail(delta.error.is_ok() ? Status::unavailable("the request was aborted") : delta.error);
}

}  // namespace pagoda
