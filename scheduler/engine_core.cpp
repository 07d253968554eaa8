#include "scheduler/engine_core.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <spdlog/spdlog.h>

#include "scheduler/stop_strings.h"

namespace pagoda {

namespace {
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
bool contains(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

RequestLimits limits_of(const SchedulerConfig& scheduler, const KvCacheManager& kv, const ModelRunner& runner) {
  RequestLimits l;
  l.max_model_len = scheduler.max_model_len;
  l.max_num_batched_tokens = scheduler.max_num_batched_tokens;
  l.chunked_prefill = scheduler.chunked_prefill;
  l.page_size = kv.page_size();
  l.usable_pages = kv.num_usable_pages();
  l.sliding_window = kv.config().sliding_window;
  l.vocab_size = runner.vocab_size();
  return l;
}
}  // namespace

EngineCore::EngineCore(const EngineCoreConfig& config, std::unique_ptr<KvCacheManager> kv,
                       std::unique_ptr<ModelRunner> runner, std::shared_ptr<const Tokenizer> tokenizer,
                       std::shared_ptr<EngineStats> stats)
    : config_(config), kv_(std::move(kv)), scheduler_(config.scheduler, kv_.get()), runner_(std::move(runner)),
      tokenizer_(std::move(tokenizer)), stats_(std::move(stats)),
      limits_(limits_of(config_.scheduler, *kv_, *runner_)) {}

void EngineCore::add(std::shared_ptr<Request> request) {
  stats_->prompt_tokens.add(static_cast<double>(request->num_prompt_tokens));
  scheduler_.add(std::move(request));
  publish_gauges();
}

bool EngineCore::step(Clock::time_point now) {
  // Late masks that are ready now: those requests sample and rejoin.
  const bool sampled_late = sample_late();
  // Cancellations and queue timeouts, before anything is scheduled.
  std::vector<std::shared_ptr<Request>> live(scheduler_.running().begin(), scheduler_.running().end());
  live.insert(live.end(), scheduler_.waiting().begin(), scheduler_.waiting().end());
  for (const auto& r : live) {
    if (r->cancelled()) {
      finish_request(*r, FinishReason::kAbort, Status::cancelled("cancelled by the client"), now);
    } else if (config_.queue_timeout_s > 0 && r->state == RequestState::kWaiting &&
               r->times.first_scheduled == Clock::time_point{} &&
               seconds(now - r->times.arrival) > config_.queue_timeout_s) {
      finish_request(*r, FinishReason::kError,
                     Status::unavailable("the request waited longer than scheduler.queue_timeout_s (" +
                                         std::to_string(config_.queue_timeout_s) + " s) for a slot"),
                     now);
    }
  }

  SchedulerOutput out = scheduler_.schedule();
  stats_->preemptions.add(out.num_preempted);
  if (out.empty()) {
    // Nothing to run but late masks: wait a little for one (not long: a
    // new request may arrive).
    if (!late_.empty()) {
      const auto deadline = Clock::now() + std::chrono::milliseconds(2);
      auto any_ready = [&] {
        return std::any_of(late_.begin(), late_.end(), [&](const auto& r) { return !mask_pending(*r); });
      };
      MutexLock lock(mask_signal_->mu);
      while (!any_ready() && Clock::now() < deadline) mask_signal_->cv.wait_until(lock.native(), deadline);
    }
    const bool sampled = sample_late() || sampled_late;
    publish_gauges();
    return sampled;
  }
  for (const ScheduledSeq& s : out.seqs) {
    Request& r = *s.request;
    if (!r.queue_time_recorded) {
      r.queue_time_recorded = true;
      stats_->queue_time.observe(seconds(r.times.first_scheduled - r.times.arrival));
    }
  }
  const auto t0 = Clock::now();
  std::future<void> masks = start_grammar_masks(out);
  Status st = runner_->run(out, *kv_, &logits_, &hidden_);
  settle_grammar_masks(std::move(masks), Clock::now() - t0);
  if (st.is_ok()) {  // the rows sample_and_update reads
    int64_t rows = 0, hidden_rows = 0;
    for (const ScheduledSeq& s : out.seqs) {
      rows += s.prompt_logits ? s.num_new_tokens : (s.sample ? 1 : 0);
      hidden_rows += s.hidden ? s.num_new_tokens : 0;
    }
    if (static_cast<int64_t>(logits_.size()) < rows * limits_.vocab_size)
      st = Status::internal("the model runner returned " + std::to_string(logits_.size()) + " logits for " +
                            std::to_string(rows) + " rows");
    else if (static_cast<int64_t>(hidden_.size()) < hidden_rows * runner_->hidden_size() ||
             (hidden_rows > 0 && runner_->hidden_size() == 0))
      st = Status::internal("the model runner returned " + std::to_string(hidden_.size()) + " hidden floats for " +
                            std::to_string(hidden_rows) + " rows");
  }
  if (!st.is_ok()) {
    for (const ScheduledSeq& s : out.seqs)
      finish_request(*s.request, FinishReason::kError, Status::internal("model step failed: " + st.message()), now);
    return true;
  }
  scheduler_.on_step_done(out);
  sample_and_update(out);
  stats_->steps.add();
  const double step_s = seconds(Clock::now() - t0);
  spdlog::trace("engine step: {} tokens, {} sequences, {:.2f} ms", out.num_tokens, out.seqs.size(), 1e3 * step_s);
  stats_->step_time.observe(step_s);
  stats_->batch_tokens.observe(static_cast<double>(out.num_tokens));
  stats_->batch_seqs.observe(static_cast<double>(out.seqs.size()));
  publish_gauges();
  return true;
}

void EngineCore::mask_stop_tokens(const Request& r, float* logits) const {
  const float ninf = -std::numeric_limits<float>::infinity();
  const int32_t vocab = limits_.vocab_size;
  for (int32_t t : tokenizer_->eos_ids())
    if (t >= 0 && t < vocab) logits[t] = ninf;
  for (int32_t t : r.stop.stop_token_ids) logits[t] = ninf;
}

void EngineCore::sample_and_update(const SchedulerOutput& out) {
  const int64_t vocab = limits_.vocab_size;
  int64_t row = 0, hidden_row = 0;
  for (const ScheduledSeq& s : out.seqs) {
    Request& r = *s.request;
    if (s.hidden) {
      pool_hidden(r, r.num_computed_tokens - s.num_new_tokens, hidden_.data() + hidden_row * runner_->hidden_size(),
                  s.num_new_tokens);
      hidden_row += s.num_new_tokens;
    }
    const int64_t rows = s.prompt_logits ? s.num_new_tokens : (s.sample ? 1 : 0);
    if (s.prompt_logits) score_prompt(r, r.num_computed_tokens - s.num_new_tokens, logits_.data() + row * vocab, rows);
    row += rows;
    if (!s.sample) continue;
    float* logits = logits_.data() + (row - 1) * vocab;
    if (r.stop.max_tokens == 0) {  // the prompt only: scored or pooled, nothing generated
      if (r.wants_hidden()) finish_embedding(r);
      finish_request(r, FinishReason::kLength, Status::ok(), Clock::now());
      continue;
    }
    if (r.grammar && mask_pending(r)) {
      // Its mask is late: it sits out until the mask is ready (sample_late).
      r.late_logits.assign(logits, logits + vocab);
      late_.push_back(r.shared_from_this());
      stats_->late_grammar_masks.add();
      continue;
    }
    sample_next(r, logits);
  }
}

void EngineCore::sample_next(Request& r, float* logits) {
  const int64_t vocab = limits_.vocab_size;
  if (r.num_output_tokens() < r.stop.min_tokens) mask_stop_tokens(r, logits);
  if (!r.rng) {
    r.rng = RequestRng::from_optional(r.sampling.seed);
    r.detok =
        std::make_unique<StreamingDetokenizer>(*tokenizer_, r.tokens[static_cast<size_t>(r.num_prompt_tokens - 1)]);
  }
  if (r.grammar && !apply_grammar(r, logits)) return;
  const std::span<const int32_t> all(r.tokens);
  SampleResult res = sampler_.sample(std::span<const float>(logits, static_cast<size_t>(vocab)), r.sampling, *r.rng,
                                     all.first(static_cast<size_t>(r.num_prompt_tokens)),
                                     all.subspan(static_cast<size_t>(r.num_prompt_tokens)));
  if (r.grammar && !r.grammar->accept(res.token)) {
    finish_request(r, FinishReason::kError,
                   Status::internal("structured output: the sampled token " + std::to_string(res.token) +
                                    " is not one the grammar allows"),
                   Clock::now());
    return;
  }
  append_token(r, res);
}

bool EngineCore::mask_pending(const Request& r) const {
  if (!r.grammar_mask_ready.load(std::memory_order_acquire)) return true;
  const structured::CompiledGrammar* g = &r.grammar->grammar();
  return std::any_of(masking_.begin(), masking_.end(), [&](const std::shared_ptr<Request>& o) {
    return o.get() != &r && &o->grammar->grammar() == g && !o->grammar_mask_ready.load(std::memory_order_acquire);
  });
}

bool EngineCore::sample_late() {
  std::erase_if(masking_, [](const std::shared_ptr<Request>& r) {
    return r->grammar_mask_ready.load(std::memory_order_acquire);
  });
  bool sampled = false;
  std::erase_if(late_, [&](const std::shared_ptr<Request>& r) {
    if (r->state == RequestState::kFinished) return true;  // cancelled or aborted meanwhile
    if (r->cancelled() || mask_pending(*r)) return false;  // (the cancellation check ends it)
    std::vector<float> logits = std::move(r->late_logits);
    r->late_logits = {};  // (no longer late)
    sample_next(*r, logits.data());
    sampled = true;
    return true;
  });
  std::erase_if(mask_tasks_,
                [](std::future<void>& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
  return sampled;
}

void EngineCore::settle_grammar_masks(std::future<void> masks, Clock::duration forward) {
  if (!masks.valid()) return;
  constexpr Clock::duration kMinMaskWait = std::chrono::microseconds(500);
  masks.wait_for(std::max<Clock::duration>(forward / 10, kMinMaskWait));
  mask_tasks_.push_back(std::move(masks));
}

void EngineCore::pool_hidden(Request& r, int64_t first_pos, const float* rows, int64_t n) {
  const int64_t dim = runner_->hidden_size();
  // Position 0 starts (or, after a preemption, restarts) the sum.
  if (r.pooled.empty() || first_pos == 0) r.pooled.assign(static_cast<size_t>(dim), 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t pos = first_pos + j;
    if (pos >= r.num_prompt_tokens) break;
    const float* row = rows + j * dim;
    const bool take = r.pooling == Pooling::kMean || (r.pooling == Pooling::kCls && pos == 0) ||
                      (r.pooling == Pooling::kLast && pos == r.num_prompt_tokens - 1);
    if (!take) continue;
    if (r.pooling == Pooling::kMean) {
      for (int64_t i = 0; i < dim; ++i) r.pooled[static_cast<size_t>(i)] += row[i];
    } else {
      std::copy(row, row + dim, r.pooled.begin());
    }
  }
}

void EngineCore::finish_embedding(Request& r) {
  std::vector<float> v = std::move(r.pooled);
  r.pooled.clear();
  if (r.pooling == Pooling::kMean && r.num_prompt_tokens > 0)
    for (float& x : v) x /= static_cast<float>(r.num_prompt_tokens);
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  norm = std::sqrt(norm);
  if (norm > 0)
    for (float& x : v) x = static_cast<float>(x / norm);
  r.embedding = std::move(v);
}

void EngineCore::score_prompt(Request& r, int64_t first_pos, const float* logits, int64_t rows) {
  const int64_t vocab = limits_.vocab_size;
  for (int64_t j = 0; j < rows; ++j) {
    const int64_t target = first_pos + j + 1;  // the token row j predicts
    if (target >= r.num_prompt_tokens) break;
    if (target != r.prompt_scored + 1) continue;  // scored before a preemption
    const int32_t token = r.tokens[static_cast<size_t>(target)];
    SampleResult res = sampler_.score(std::span<const float>(logits + j * vocab, static_cast<size_t>(vocab)), token,
                                      r.prompt_logprobs);
    r.prompt_lps.push_back({token, res.logprob, std::move(res.top_logprobs), res.rank});
    r.prompt_scored = target;
  }
}

std::future<void> EngineCore::start_grammar_masks(const SchedulerOutput& out) {
  // The task holds its requests: one that ends while its mask is computed
  // stays alive (and its grammar with it) until the task is done.
  std::vector<std::shared_ptr<Request>> constrained;
  for (const ScheduledSeq& s : out.seqs) {
    if (!s.sample || !s.request->grammar) continue;
    s.request->grammar_mask_ready.store(false, std::memory_order_relaxed);
    constrained.push_back(s.request->shared_from_this());
    masking_.push_back(constrained.back());
  }
  if (constrained.empty()) return {};
  // Quickest first, so one slow grammar makes only itself late.
  std::stable_sort(constrained.begin(), constrained.end(),
                   [](const auto& a, const auto& b) { return a->grammar_mask_us < b->grammar_mask_us; });
  return std::async(std::launch::async, [constrained = std::move(constrained), signal = mask_signal_] {
    for (const std::shared_ptr<Request>& r : constrained) {
      const auto t0 = Clock::now();
      try {
        r->grammar_mask_status = r->grammar->fill_mask(r->grammar_mask);
      } catch (const std::exception& e) {  // out of memory: that request ends with an error
        r->grammar_mask_status =
            Status::internal(std::string("structured output: computing the token mask failed: ") + e.what());
      }
      r->grammar_mask_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
      {
        MutexLock lock(signal->mu);  // (a waiter checks the flag under it: no lost wake-up)
        r->grammar_mask_ready.store(true, std::memory_order_release);
      }
      signal->cv.notify_all();
    }
  });
}

bool EngineCore::apply_grammar(Request& r, float* logits) {
  if (r.grammar->finished()) {
    // EOS was sampled and kept (ignore_eos): the grammar is complete.
    r.text += r.detok->flush();
    finish_request(r, FinishReason::kStop, Status::ok(), Clock::now());
    return false;
  }
  if (!r.grammar_mask_status) {
    finish_request(r, FinishReason::kError, r.grammar_mask_status, Clock::now());
    return false;
  }
  const structured::TokenMask& mask = r.grammar_mask;
  const float ninf = -std::numeric_limits<float>::infinity();
  const int32_t vocab = limits_.vocab_size;
  bool any_text = false;
  for (int32_t id = 0; id < vocab; ++id) {
    if (!structured::mask_allows(mask, id)) {
      logits[id] = ninf;
    } else if (!contains(tokenizer_->eos_ids(), id)) {
      any_text = true;
    }
  }
  if (!any_text) {
    // Only EOS (or nothing) is left. When the grammar may end here the
    // output is complete: stop, even when EOS is ignored or masked by
    // min_tokens, since no other token could follow. Otherwise no token of
    // this vocabulary can continue it: an error, never an invalid output
    // reported as complete.
    r.text += r.detok->flush();
    if (r.grammar->can_end()) {
      finish_request(r, FinishReason::kStop, Status::ok(), Clock::now());
    } else {
      finish_request(r, FinishReason::kError,
                     Status::internal("structured output: no token of the vocabulary can continue the grammar here"),
                     Clock::now());
    }
    return false;
  }
  return true;
}

void EngineCore::append_token(Request& r, const SampleResult& res) {
  const int32_t tok = res.token;
  r.tokens.push_back(tok);
  stats_->generation_tokens.add();
  const auto t = Clock::now();
  if (r.times.first_token == Clock::time_point{}) {
    r.times.first_token = t;
    stats_->time_to_first_token.observe(seconds(t - r.times.arrival));
  } else {
    stats_->inter_token_latency.observe(seconds(t - r.times.last_token));
  }
  r.times.last_token = t;
  if (r.sampling.logprobs >= 0) r.pending_logprobs.push_back({tok, res.logprob, res.top_logprobs});

  FinishReason reason = FinishReason::kNone;
  const bool eos = !r.stop.ignore_eos && contains(tokenizer_->eos_ids(), tok);
  if (eos || contains(r.stop.stop_token_ids, tok)) {
    reason = FinishReason::kStop;
  } else {
    const size_t before = r.text.size();
    r.text += r.detok->push(tok);
    if (!r.stop.stop.empty()) {
      const size_t pos = find_stop_string(r.text, before, r.stop.stop);
      if (pos != std::string::npos) {
        r.text.resize(pos);
        reason = FinishReason::kStop;
      }
    }
  }
  if (reason == FinishReason::kNone &&
      (r.num_output_tokens() >= r.stop.max_tokens || r.num_tokens() >= scheduler_.config().max_model_len)) {
    r.text += r.detok->flush();
    reason = FinishReason::kLength;
  }
  if (reason != FinishReason::kNone) {
    finish_request(r, reason, Status::ok(), Clock::now());
  } else {
    emit(r, false);
  }
}

void EngineCore::emit(Request& r, bool final, Status error) {
  RequestDelta d;
  const size_t hold = final ? 0 : stop_holdback(std::string_view(r.text).substr(r.text_sent), r.stop.stop);
  const size_t upto = r.text.size() - hold;
  if (upto > r.text_sent) d.text = r.text.substr(r.text_sent, upto - r.text_sent);
  r.text_sent = std::max(r.text_sent, upto);
  d.token_ids.assign(r.tokens.begin() + r.num_prompt_tokens + r.tokens_sent, r.tokens.end());
  r.tokens_sent = r.num_output_tokens();
  d.logprobs = std::move(r.pending_logprobs);
  r.pending_logprobs.clear();

  d.finish = r.finish;
  d.error = std::move(error);
  d.prompt_tokens = r.num_prompt_tokens;
  d.completion_tokens = r.num_output_tokens();
  d.cached_tokens = r.num_cached_tokens;
  if (!final && d.text.empty() && d.token_ids.empty()) return;
  d.prompt_logprobs = std::move(r.prompt_lps);  // all of them by the first delta
  r.prompt_lps.clear();
  d.embedding = std::move(r.embedding);
  r.embedding.clear();
  if (r.sink) r.sink->on_delta(std::move(d));
}

void EngineCore::finish_request(Request& r, FinishReason reason, Status status, Clock::time_point now) {
  scheduler_.finish(&r, reason);
  // Publish the freed pages before the client can hear of the end.
  publish_gauges();
  stats_->finished[static_cast<size_t>(reason)].add();
  stats_->e2e_latency.observe(seconds(now - r.times.arrival));
  emit(r, /*final=*/true, std::move(status));  // what was held back, the reason, any error
}

void EngineCore::publish_gauges() {
  stats_->requests_running.set(static_cast<double>(num_running()));
  stats_->requests_waiting.set(static_cast<double>(num_waiting()));
  stats_->set_kv_usage(kv_->usage());
}

void EngineCore::abort_all(FinishReason reason, const Status& status) {
  std::vector<std::shared_ptr<Request>> live(scheduler_.running().begin(), scheduler_.running().end());
  live.insert(live.end(), scheduler_.waiting().begin(), scheduler_.waiting().end());
  for (const auto& r : live) finish_request(*r, reason, status, Clock::now());
  // No request outlives this: the mask tasks and the late lists hold theirs,
  // and a request's output sink may refer to the HTTP server's executor,
  // which goes before the engine does at shutdown.
  mask_tasks_.clear();  // joins them
  late_.clear();
  masking_.clear();
}

}  // namespace pagoda
