#include "scheduler/engine_loop.h"

#include <omp.h>

#include <spdlog/spdlog.h>

namespace pagoda {

EngineLoop::EngineLoop(std::unique_ptr<EngineCore> core, int compute_threads, int64_t max_queue)
    : core_(std::move(core)), compute_threads_(compute_threads), max_queue_(max_queue) {}

EngineLoop::~EngineLoop() { stop(); }

void EngineLoop::start() {
  thread_ = std::thread([this] { run(); });
}

Status EngineLoop::admission_locked() {
  if (draining_) return Status::unavailable("the server is shutting down");
  if (stop_requested_) return Status::unavailable("the engine has stopped");
  const int64_t queued = static_cast<int64_t>(inbox_.size()) + waiting_.load();
  if (queued >= max_queue_) {
    core_->stats().rejected_queue_full.add();
    return Status::resource_exhausted("the server is busy: " + std::to_string(queued) +
                                      " requests are waiting (scheduler.max_queue " + std::to_string(max_queue_) +
                                      "); retry later");
  }
  return Status::ok();
}

Status EngineLoop::check_admission() {
  MutexLock lock(mu_);
  return admission_locked();
}

Status EngineLoop::submit(std::shared_ptr<Request> request) {
  if (draining_) return Status::unavailable("the server is shutting down");
  PAGODA_RETURN_IF_ERROR(core_->validate(*request));
  {
    MutexLock lock(mu_);
    PAGODA_RETURN_IF_ERROR(admission_locked());
    inbox_.push_back(std::move(request));
    unfinished_++;
  }
  cv_.notify_one();
  return Status::ok();
}

Status EngineLoop::submit_sibling(std::shared_ptr<Request> request) {
  PAGODA_RETURN_IF_ERROR(core_->validate(*request));
  {
    MutexLock lock(mu_);
    if (stop_requested_) return Status::unavailable("the engine has stopped");
    inbox_.push_back(std::move(request));
    unfinished_++;
  }
  cv_.notify_one();
  return Status::ok();
}

void EngineLoop::begin_drain() { draining_ = true; }

bool EngineLoop::wait_idle(std::chrono::milliseconds timeout) {
  MutexLock lock(mu_);
  return idle_cv_.wait_for(lock.native(), timeout, [&] { return unfinished_.load() == 0; });
}

void EngineLoop::stop() {
  {
    MutexLock lock(mu_);
    if (stop_requested_ && !thread_.joinable()) return;
    stop_requested_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void EngineLoop::run() {
  if (compute_threads_ > 0) omp_set_num_threads(compute_threads_);
  std::vector<std::shared_ptr<Request>> incoming;
  for (;;) {
    {
      MutexLock lock(mu_);
      // Sleep while there is nothing to do; with work that cannot be
      // scheduled yet (rare), retry after a short wait instead of spinning.
      if (!core_->has_work()) {
        while (!stop_requested_ && inbox_.empty()) cv_.wait(lock.native());
      }
      if (stop_requested_) break;
      incoming.swap(inbox_);
      // They join the scheduler's waiting queue now: count them there, so
      // submit() keeps inbox + waiting <= max_queue during the step (the
      // snapshot is refreshed after it).
      waiting_ = waiting_.load() + static_cast<int64_t>(incoming.size());
    }
    for (auto& r : incoming) core_->add(std::move(r));
    incoming.clear();
    bool ran = false;
    try {
      ran = core_->step();
    } catch (const std::exception& e) {
      spdlog::error("engine step failed: {}", e.what());
      core_->abort_all(FinishReason::kError, Status::internal(std::string("engine failure: ") + e.what()));
    }
    {
      MutexLock lock(mu_);
      waiting_ = core_->num_waiting();
      unfinished_ = static_cast<int64_t>(inbox_.size()) + core_->num_waiting() + core_->num_running();
    }
    idle_cv_.notify_all();
    if (!ran && core_->has_work() && !core_->has_late()) {  // (with late masks step() waits itself)
      MutexLock lock(mu_);
      if (!stop_requested_ && inbox_.empty()) cv_.wait_for(lock.native(), std::chrono::milliseconds(5));
    }
  }
  // Abort what is left, including requests still in the inbox.
  {
    MutexLock lock(mu_);
    for (auto& r : inbox_) core_->add(std::move(r));
    inbox_.clear();
  }
  core_->abort_all(FinishReason::kAbort, Status::unavailable("the server is shutting down"));
  unfinished_ = 0;
  idle_cv_.notify_all();
}

}  // namespace pagoda
