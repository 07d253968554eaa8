// EngineLoop: the engine thread. Drains a thread-safe inbox of submitted
// requests into the EngineCore, runs steps while there is work, and sleeps on
// a condition variable when there is none (no busy spin).
//
// Admission happens in submit(), on the caller's thread: the request is
// validated (lengths, sampling parameters) and refused when the server is
// draining (Unavailable) or the waiting queue is full (ResourceExhausted,
// which the server turns into 429 with Retry-After).
//
// Owns the EngineCore and the thread. submit(), cancel via Request::cancel(),
// begin_drain(), wait_idle(), stats() and the counters are thread-safe;
// start() and stop() are called once each by the owner.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "scheduler/engine_core.h"

namespace pagoda {

class EngineLoop {
 public:
  // compute_threads: OpenMP threads for the model (0 = all cores).
  // max_queue: waiting requests (inbox + scheduler queue) before refusing.
  EngineLoop(std::unique_ptr<EngineCore> core, int compute_threads, int64_t max_queue);
  ~EngineLoop();
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  void start();
  // Admits a request or says why not. Never blocks on the engine's step.
  Status submit(std::shared_ptr<Request> request) EXCLUDES(mu_);
  // Admits a later choice of a response whose first request was admitted
  // (n > 1): neither a drain nor a full queue refuses it, as the response
  // was accepted whole; a stopped engine or an invalid request still does.
  Status submit_sibling(std::shared_ptr<Request> request) EXCLUDES(mu_);
  // What submit() would answer about admission right now (draining, stopped,
  // queue full), without a request: the server asks first, so a refusal under
  // overload costs no body parsing or tokenizing. submit() checks again.
  Status check_admission() EXCLUDES(mu_);
  // From now on submit() answers Unavailable; running work goes on.
  void begin_drain();
  bool draining() const { return draining_.load(); }
  // Waits until no request is queued or running, or `timeout` passes.
  // Returns true if idle.
  bool wait_idle(std::chrono::milliseconds timeout) EXCLUDES(mu_);
  // Aborts what is left (their sinks get a final delta) and joins the thread.
  void stop() EXCLUDES(mu_);

  int64_t num_unfinished() const { return unfinished_.load(); }
  EngineStats& stats() { return core_->stats(); }

 private:
  void run() EXCLUDES(mu_);
  Status admission_locked() REQUIRES(mu_);

  std::unique_ptr<EngineCore> core_;
  int compute_threads_;
  int64_t max_queue_;
  std::thread thread_;
  Mutex mu_;
  std::condition_variable cv_;       // wakes the engine thread
  std::condition_variable idle_cv_;  // wakes wait_idle()
  std::vector<std::shared_ptr<Request>> inbox_ GUARDED_BY(mu_);
  bool stop_requested_ GUARDED_BY(mu_) = false;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> waiting_{0};     // scheduler's waiting queue, as of the last step
  std::atomic<int64_t> unfinished_{0};  // inbox + waiting + running
};

}  // namespace pagoda
