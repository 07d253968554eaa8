// EngineCore: one engine step, start to finish: honour cancellations and
// queue timeouts, schedule, run the model (the step's grammar masks computed
// meanwhile by a task of their own; a request whose mask is late sits out
// until it is ready), sample,
// apply stop conditions (EOS, stop tokens, stop strings across token
// boundaries, max_tokens, model length), detokenize and push each request's
// delta to its sink. EngineLoop runs it on the engine thread; tests drive it
// directly (with fake model runners and virtual time).
//
// Owns the KvCacheManager, the Scheduler, the ModelRunner, the Sampler and
// the mask tasks (joined when it is destroyed); shares the Tokenizer and
// EngineStats. Not thread-safe: one thread calls it,
// except validate() and limits(), which read only the immutable RequestLimits.
#pragma once

#include <condition_variable>
#include <future>
#include <memory>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "engine/sampler/sampler.h"
#include "kvpool/kv_cache_manager.h"
#include "scheduler/engine_stats.h"
#include "scheduler/model_runner.h"
#include "scheduler/request_limits.h"
#include "scheduler/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace pagoda {

struct EngineCoreConfig {
  SchedulerConfig scheduler;
  double queue_timeout_s = 0;  // 0 = no limit
};

class EngineCore {
 public:
  EngineCore(const EngineCoreConfig& config, std::unique_ptr<KvCacheManager> kv, std::unique_ptr<ModelRunner> runner,
             std::shared_ptr<const Tokenizer> tokenizer, std::shared_ptr<EngineStats> stats);

  // validate_request() against this engine's limits. Thread-safe.
  Status validate(const Request& request) const { return validate_request(limits_, request); }
  const RequestLimits& limits() const { return limits_; }
  // Queues a validated request.
  void add(std::shared_ptr<Request> request);
  // Runs one step at time `now`. Returns false when there was nothing to run
  // (true also when only late requests sampled).
  bool step(Clock::time_point now = Clock::now());
  // Ends every request with `reason` (shutdown) and lets go of them all,
  // joining the mask tasks that hold some.
  void abort_all(FinishReason reason, const Status& status);

  bool has_work() const { return scheduler_.num_unfinished() > 0; }
  // Whether requests sit out waiting for their masks (step() then waits for
  // one itself, a little, rather than the caller sleeping).
  bool has_late() const { return !late_.empty(); }
  int64_t num_waiting() const { return static_cast<int64_t>(scheduler_.waiting().size()); }
  int64_t num_running() const { return static_cast<int64_t>(scheduler_.running().size()); }
  const KvCacheManager& kv() const { return *kv_; }
  const Scheduler& scheduler() const { return scheduler_; }
  EngineStats& stats() { return *stats_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  // Scores the prompt tokens that `rows` rows of logits predict, the first
  // row being position `first_pos`'s (prompt logprobs).
  void score_prompt(Request& r, int64_t first_pos, const float* logits, int64_t rows);
  // Embeddings: folds `n` hidden rows, the first being position
  // `first_pos`'s, into r.pooled; finish_embedding makes r.embedding of it
  // (the mean divided out, L2-normalized).
  void pool_hidden(Request& r, int64_t first_pos, const float* rows, int64_t n);
  static void finish_embedding(Request& r);
  void sample_and_update(const SchedulerOutput& out);
  void append_token(Request& r, const SampleResult& res);
  void emit(Request& r, bool final, Status error = Status::ok());
  void finish_request(Request& r, FinishReason reason, Status status, Clock::time_point now);
  void mask_stop_tokens(const Request& r, float* logits) const;
  // Starts computing the token masks of the step's constrained sequences on
  // another thread (they need only the state after the last sampled token),
  // so they overlap the forward pass; an invalid future when there are none.
  // Each request's grammar_mask_ready is set as its mask is done, quickest
  // (by its last mask) first.
  std::future<void> start_grammar_masks(const SchedulerOutput& out);
  // Waits for this step's masks at most a tenth of the forward pass (which
  // took `forward`; at least kMinMaskWait), then keeps the task among
  // mask_tasks_.
  void settle_grammar_masks(std::future<void> masks, Clock::duration forward);
  // Whether `r` must wait for its mask: it is not ready, or another
  // request's mask on the same compiled grammar is still being computed
  // (that walk holds the grammar's lock, which sampling `r` takes).
  bool mask_pending(const Request& r) const;
  // The rest of sampling one request from its row of logits: stop-token
  // masking, the grammar's mask, the sampler, the grammar's step, append.
  void sample_next(Request& r, float* logits);
  // Samples the late requests whose masks are now ready (and forgets those
  // that ended meanwhile). Returns whether any sampled.
  bool sample_late();
  // Sets the logits of the tokens r.grammar_mask bans to -inf. False when
  // the request ended instead: its grammar is complete (only EOS is left)
  // or failed.
  bool apply_grammar(Request& r, float* logits);
  // Running and waiting counts and KV usage into the stats' gauges: after
  // anything that changes them, before the client can hear of it.
  void publish_gauges();

  EngineCoreConfig config_;
  std::unique_ptr<KvCacheManager> kv_;
  Scheduler scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::shared_ptr<EngineStats> stats_;
  const RequestLimits limits_;
  Sampler sampler_;
  std::vector<float> logits_;
  std::vector<float> hidden_;  // this step's final hidden states (embeddings)
  // The requests sitting out until their mask is ready (Request::mask_late).
  std::vector<std::shared_ptr<Request>> late_;
  // Requests handed to a mask task whose masks were not yet seen ready
  // (finished ones included: their walk may still hold a grammar's lock).
  std::vector<std::shared_ptr<Request>> masking_;
  // Signalled by the tasks as each mask is ready (shared: a task may
  // outlive its step).
  struct MaskSignal {
    Mutex mu;
    std::condition_variable cv;
  };
  std::shared_ptr<MaskSignal> mask_signal_ = std::make_shared<MaskSignal>();
  // Mask tasks that may still run (a late mask's task outlives its step;
  // their futures join them when dropped). Declared last: the tasks are
  // joined before anything they read is destroyed.
  std::vector<std::future<void>> mask_tasks_;
};

}  // namespace pagoda
