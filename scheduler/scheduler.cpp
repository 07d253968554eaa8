#include "scheduler/scheduler.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace pagoda {

Scheduler::Scheduler(const SchedulerConfig& config, KvCacheManager* kv) : config_(config), kv_(kv) {
  // A programming error (the server copies every field from the validated
  // config): stop loudly in every build type, not only with assertions on.
  if (config.max_num_seqs <= 0 || config.max_num_batched_tokens <= 0 || config.max_model_len <= 0) {
    std::fprintf(stderr,
                 "Scheduler: SchedulerConfig sizes must be set (max_num_seqs, max_num_batched_tokens, "
                 "max_model_len)\n");
    std::abort();
  }
}

bool Scheduler::worse(const Request& a, const Request& b) const {
  if (config_.priority_policy && a.priority != b.priority) return a.priority > b.priority;
  if (a.times.arrival != b.times.arrival) return a.times.arrival > b.times.arrival;
  return a.id > b.id;
}

void Scheduler::enqueue(std::shared_ptr<Request> request, bool front) {
  request->state = RequestState::kWaiting;
  if (!config_.priority_policy) {
    if (front) waiting_.push_front(std::move(request));
    else waiting_.push_back(std::move(request));
    return;
  }
  // Priority order: (priority, arrival); a preempted request sorts by the
  // same key, so it lands ahead of everything that arrived after it.
  auto pos = std::find_if(waiting_.begin(), waiting_.end(),
                          [&](const std::shared_ptr<Request>& w) { return worse(*w, *request); });
  waiting_.insert(pos, std::move(request));
}

void Scheduler::add(std::shared_ptr<Request> request) { enqueue(std::move(request), false); }

int64_t Scheduler::step_tokens(const Request& r, int64_t logit_rows_left) const {
  const int64_t left = r.num_tokens() - r.num_computed_tokens;
  // A token scored in the prompt costs a vocabulary-sized row of logits: a
  // step holds at most kMaxPromptLogitRows of them, over all requests.
  return r.needs_prompt_logits() ? std::min(left, logit_rows_left) : left;
}

bool Scheduler::may_chunk(const Request& r) const { return config_.chunked_prefill || r.prompt_logprobs >= 0; }

void Scheduler::preempt(const std::shared_ptr<Request>& victim) {
  kv_->free(victim->id, /*preempted=*/true);
  victim->num_computed_tokens = 0;
  victim->num_preemptions++;
  total_preemptions_++;
  running_.erase(std::find(running_.begin(), running_.end(), victim));
  enqueue(victim, /*front=*/true);
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int64_t budget = config_.max_num_batched_tokens;
  int64_t logit_rows_left = Request::kMaxPromptLogitRows;
  std::vector<Request*> scheduled;

  // 1. Running requests, oldest first. Iterate over a snapshot: preemption
  // removes requests from running_.
  const std::vector<std::shared_ptr<Request>> snapshot = running_;
  for (const std::shared_ptr<Request>& req : snapshot) {
    if (budget <= 0) break;
    if (req->state != RequestState::kRunning) continue;  // preempted earlier this step
    int64_t num_new = step_tokens(*req, logit_rows_left);
    if (num_new > budget) {
      if (!may_chunk(*req)) continue;
      num_new = budget;
    }
    if (num_new <= 0) continue;
    bool self_preempted = false;
    while (!kv_->allocate_slots(req->id, req->num_computed_tokens + num_new, req->num_computed_tokens)) {
      // Out of pages: preempt the worst running request not yet scheduled
      // this step (possibly this one), and not waiting for its token mask
      // (it would be prefilled again and sample twice).
      std::shared_ptr<Request> victim;
      for (const auto& r : running_)
        if (std::find(scheduled.begin(), scheduled.end(), r.get()) == scheduled.end() && !r->mask_late() &&
            (!victim || worse(*r, *victim)))
          victim = r;
      out.num_preempted++;
      preempt(victim);
      if (victim == req) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) continue;
    const bool sample = req->num_computed_tokens + num_new == req->num_tokens();
    out.seqs.push_back({req.get(), num_new, sample, req->needs_prompt_logits(), req->wants_hidden()});
    if (req->needs_prompt_logits()) logit_rows_left -= num_new;
    out.num_tokens += num_new;
    budget -= num_new;
    scheduled.push_back(req.get());
  }

  // 2. Waiting requests, unless this step had to preempt. On a CPU a prompt
  // token costs about as much as a step's fixed part (streaming the weights,
  // synchronization) divided by ~16-20: adding a prompt of L new tokens to a
  // step that already computes one delays that one by L tokens' work and
  // saves the newcomer one step's fixed cost (the decodes included). So a
  // waiting request joins a step that already prefills only when the tokens
  // it would compute in it (L, or what is left of the budget) are at most
  // the decode tokens plus prefill_join_tokens; otherwise it waits for a
  // step that computes no other prompt (the next one, unless a running
  // request is still mid-prompt). Simultaneous arrivals are then prefilled
  // one after another (lower mean TTFT than finishing all at the end of one
  // big step) and closed-loop clients do not stay in lock-step.
  int64_t decode_tokens = 0;  // one-token entries (decodes, or a prompt's last token)
  bool prefilling = false;
  auto count = [&](int64_t num_new) {
    if (num_new == 1) ++decode_tokens;
    else prefilling = true;
  };
  for (const ScheduledSeq& s : out.seqs) count(s.num_new_tokens);
  while (out.num_preempted == 0 && budget > 0 && !waiting_.empty() &&
         static_cast<int64_t>(running_.size()) < config_.max_num_seqs) {
    std::shared_ptr<Request> req = waiting_.front();
    const bool fresh = req->num_computed_tokens == 0 && !kv_->has_request(req->id);
    if (prefilling) {
      // Sized with a probe of the prefix cache, so that a deferred request
      // holds no pages and counts no lookup; it is looked up when it runs,
      // seeing the pages cached meanwhile.
      const int64_t cached = !fresh                         ? req->num_computed_tokens
                             : req->computes_whole_prompt() ? 0
                                                            : kv_->probe_prefix(req->tokens, req->cache_salt);
      if (std::min(req->num_tokens() - cached, budget) > decode_tokens + config_.prefill_join_tokens) break;
    }
    if (fresh) {
      // Prefix lookup over the whole known sequence (prompt, plus output
      // already generated before a preemption).
      // Prompt logprobs and mean/cls pooling need every prompt token
      // computed: no hits (the empty lookup still records the salt for the
      // pages it caches).
      const int64_t hit = kv_->lookup_prefix(
          req->id, req->computes_whole_prompt() ? std::span<const int32_t>() : std::span<const int32_t>(req->tokens),
          req->cache_salt);
      req->num_computed_tokens = hit;
      if (req->num_preemptions == 0) req->num_cached_tokens = hit;
    }
    if (req->needs_prompt_logits() && logit_rows_left == 0) break;  // no logit rows left this step
    int64_t num_new = step_tokens(*req, logit_rows_left);
    bool admit = true;
    if (num_new > budget) {
      admit = may_chunk(*req);
      num_new = budget;
    }
    if (!admit || !kv_->allocate_slots(req->id, req->num_computed_tokens + num_new, req->num_computed_tokens)) {
      // Not now: give back the prefix references (and withdraw the lookup
      // made above from the statistics); it is looked up again when retried.
      if (fresh) kv_->cancel_lookup(req->id);
      else kv_->free(req->id);
      req->num_computed_tokens = 0;
      break;
    }
    waiting_.pop_front();
    req->state = RequestState::kRunning;
    if (req->times.first_scheduled == Clock::time_point{}) req->times.first_scheduled = Clock::now();
    running_.push_back(req);
    const bool sample = req->num_computed_tokens + num_new == req->num_tokens();
    out.seqs.push_back({req.get(), num_new, sample, req->needs_prompt_logits(), req->wants_hidden()});
    if (req->needs_prompt_logits()) logit_rows_left -= num_new;
    out.num_tokens += num_new;
    budget -= num_new;
    count(num_new);
  }
  return out;
}

void Scheduler::on_step_done(const SchedulerOutput& out) {
  for (const ScheduledSeq& s : out.seqs) {
    Request* r = s.request;
    r->num_computed_tokens += s.num_new_tokens;
    kv_->cache_full_pages(r->id, r->tokens, r->num_computed_tokens);
  }
}

void Scheduler::finish(Request* request, FinishReason reason) {
  kv_->free(request->id);
  request->state = RequestState::kFinished;
  request->finish = reason;
  auto same = [&](const std::shared_ptr<Request>& r) { return r.get() == request; };
  running_.erase(std::remove_if(running_.begin(), running_.end(), same), running_.end());
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), same), waiting_.end());
}

}  // namespace pagoda
