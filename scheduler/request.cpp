#include "scheduler/request.h"

namespace pagoda {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
  }
  return "unknown";
}

Request::Request(RequestId id_, std::vector<int32_t> prompt, SamplingParams sampling_, StopParams stop_,
                 std::shared_ptr<RequestSink> sink_)
    : id(id_), num_prompt_tokens(static_cast<int64_t>(prompt.size())), sampling(std::move(sampling_)),
      stop(std::move(stop_)), sink(std::move(sink_)), tokens(std::move(prompt)) {
  times.arrival = Clock::now();
}

}  // namespace pagoda
