// Scheduler: decides, each step, which requests run and how many tokens each
// computes, under one budget (vLLM v1 style: no separate prefill and decode
// phases; each request's num_computed_tokens catches up to its token count).
//
// Order within a step: running requests first (one decode token, or the next
// prefill chunk), then waiting ones (prefix-cache lookup, page allocation,
// a partial chunk when the budget runs out). A waiting request whose prompt
// is long next to the step's fixed cost waits for the next step rather than
// join another prompt's step (prefill_join_tokens). When pages run out, the victim
// is the lowest-priority, then latest-arriving running request: its pages are
// freed and it goes back to the front of the waiting queue to be recomputed.
//
// Owns the waiting and running lists (shared_ptrs to Requests); talks to KV
// memory only through the KvCacheManager it borrows. Not thread-safe: the
// engine thread alone calls it (requests are checked before they get here,
// against RequestLimits: scheduler/request_limits.h).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kvpool/kv_cache_manager.h"
#include "scheduler/request.h"

namespace pagoda {

// No defaults here: the config schema (config/server_config.h) holds them and
// the server copies every field; tests and benches that build a Scheduler set
// each one (the constructor aborts if a size is not positive).
struct SchedulerConfig {
  int64_t max_num_seqs = 0;            // sequences per step
  int64_t max_num_batched_tokens = 0;  // tokens per step
  // A waiting request joins a step that already computes another prompt only
  // if the tokens it would compute in it are at most this plus the step's
  // decode tokens (see schedule()); >= max_num_batched_tokens packs steps FCFS.
  int64_t prefill_join_tokens = 0;
  bool chunked_prefill = false;  // split prompts over steps
  bool priority_policy = false;  // false: fcfs
  int64_t max_model_len = 0;     // prompt + output tokens per request
};

// One request's part of a step.
struct ScheduledSeq {
  Request* request = nullptr;
  int64_t num_new_tokens = 0;  // tokens computed this step, from num_computed_tokens
  bool sample = false;         // this step computes its last known token: sample the next
  bool prompt_logits = false;  // logits for every token of this step (prompt logprobs)
  bool hidden = false;         // the final hidden state of every token of this step (embeddings)
};

struct SchedulerOutput {
  std::vector<ScheduledSeq> seqs;
  int64_t num_tokens = 0;
  int num_preempted = 0;
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvCacheManager* kv);

  // Queues a request (the caller checked validate_request() and the queue bound).
  void add(std::shared_ptr<Request> request);

  // Plans one step. Allocates pages for every scheduled token; may preempt.
  SchedulerOutput schedule();

  // After the step ran: advances num_computed_tokens of every scheduled
  // request and registers its newly full pages in the prefix cache.
  void on_step_done(const SchedulerOutput& out);

  // Ends a request (waiting or running): frees its pages and drops it.
  void finish(Request* request, FinishReason reason);

  const std::deque<std::shared_ptr<Request>>& waiting() const { return waiting_; }
  const std::vector<std::shared_ptr<Request>>& running() const { return running_; }
  int64_t num_unfinished() const { return static_cast<int64_t>(waiting_.size() + running_.size()); }
  int64_t total_preemptions() const { return total_preemptions_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  // True if a should be preempted before b (lower priority, later arrival).
  bool worse(const Request& a, const Request& b) const;
  // Tokens `r` would compute in a step with token budget to spare and
  // `logit_rows_left` prompt-logit rows left.
  int64_t step_tokens(const Request& r, int64_t logit_rows_left) const;
  // Whether `r`'s tokens may be split over steps.
  bool may_chunk(const Request& r) const;
  void preempt(const std::shared_ptr<Request>& victim);
  // Inserts by policy: fcfs keeps arrival order; priority keeps (priority, arrival).
  void enqueue(std::shared_ptr<Request> request, bool front);

  SchedulerConfig config_;
  KvCacheManager* kv_;
  std::deque<std::shared_ptr<Request>> waiting_;
  std::vector<std::shared_ptr<Request>> running_;
  int64_t total_preemptions_ = 0;
};

}  // namespace pagoda
