// ChoiceFanout: the engine requests behind one completion response, one per
// choice: choice c is sample c % n of prompt c / n (OpenAI's order for a
// batch of prompts with n > 1).
//
// The first choice of every prompt is submitted at once; a prompt's other
// choices once that first one has produced its first token, so its prefill
// is done and they find the prompt's full KV pages in the prefix cache (one
// prefill per prompt, whatever n is); those go through `submit_sibling`,
// which a drain or a full queue does not refuse (the response was accepted
// whole). It counts the choices that finished and keeps the first failure
// (a failed submit, or a choice that ended in an error or an abort), after
// which the response is that error: every request is cancelled at once and
// nothing more is submitted.
//
// Owns the bookkeeping; the requests are shared with the engine. Not
// thread-safe: used by the connection's coroutine only.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "scheduler/request.h"

namespace pagoda {

class ChoiceFanout {
 public:
  using Submit = std::function<Status(std::shared_ptr<Request>)>;

  // `requests` in choice order; `n` choices per prompt.
  ChoiceFanout(std::vector<std::shared_ptr<Request>> requests, int n, Submit submit, Submit submit_sibling);

  // Submits the first choice of every prompt; returns the first refusal.
  Status submit_first();
  // Records a delta of choice `index` (its siblings are submitted after its
  // first one, when it is a prompt's first choice).
  void on_delta(int index, const RequestDelta& delta);
  // Every choice finished, or one failed.
  bool done() const { return finished_ == requests_.size() || !failure_.is_ok(); }
  const Status& failure() const { return failure_; }
  // Whether choice 0 has finished (its request's fields are then final).
  bool first_finished() const { return first_finished_; }
  const std::vector<std::shared_ptr<Request>>& requests() const { return requests_; }
  int prompt_of(int index) const { return index / n_; }
  bool first_of_prompt(int index) const { return index % n_ == 0; }

 private:
  std::vector<std::shared_ptr<Request>> requests_;
  int n_;
  Submit submit_;
  Submit submit_sibling_;
  std::vector<bool> siblings_submitted_;  // per prompt
  size_t finished_ = 0;
  bool first_finished_ = false;
  Status failure_;
  void fail(Status status);
};

}  // namespace pagoda
