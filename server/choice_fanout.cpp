#include "server/choice_fanout.h"

#include <utility>

namespace pagoda {

ChoiceFanout::ChoiceFanout(std::vector<std::shared_ptr<Request>> requests, int n, Submit submit)
    : requests_(std::move(requests)), n_(n), submit_(std::move(submit)),
      siblings_submitted_((requests_.size() + static_cast<size_t>(n) - 1) / static_cast<size_t>(n), n == 1) {}

Status ChoiceFanout::submit_first() {
  for (size_t i = 0; i < requests_.size(); i += static_cast<size_t>(n_))
    if (Status st = submit_(requests_[i]); !st.is_ok()) return st;
  return Status::ok();
}

void ChoiceFanout::on_delta(int index, const RequestDelta& delta) {
  const bool failed = delta.finish == FinishReason::kError || delta.finish == FinishReason::kAbort;
  const auto prompt = static_cast<size_t>(prompt_of(index));
  if (first_of_prompt(index) && !siblings_submitted_[prompt] && !failed) {
    siblings_submitted_[prompt] = true;
    for (size_t i = prompt * static_cast<size_t>(n_) + 1; i < (prompt + 1) * static_cast<size_t>(n_); ++i) {
      if (Status st = submit_(requests_[i]); !st.is_ok()) {
        if (failure_.is_ok()) failure_ = st;
        break;
      }
    }
  }
  if (delta.finish == FinishReason::kNone) return;
  ++finished_;
  if (failed && failure_.is_ok())
    failure_ = delta.error.is_ok() ? Status::unavailable("the request was aborted") : delta.error;
}

}  // namespace pagoda
