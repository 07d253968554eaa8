// Request: one completion request as the engine sees it, from submit to
// finish, plus what flows back to its owner (RequestDelta through a
// RequestSink).
//
// Ownership and threads: the server builds a Request (always owned by a
// shared_ptr: the engine's mask tasks take shared ownership of it through
// shared_from_this) and hands it to EngineLoop::submit; from then on only
// the engine thread touches its mutable state (and, while its token mask is
// computed, the engine's mask task its grammar fields, below). The one field other threads may touch is `cancelled`
// (atomic): the server sets it when the client goes away, and the engine
// honours it at its next step. The sink is called on the engine thread and
// must be thread-safe on its side (e.g. post to the connection's strand).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/request_id.h"
#include "common/status.h"
#include "engine/sampler/sampler.h"
#include "structured/compiled_grammar.h"
#include "tokenizer/detokenizer.h"

namespace pagoda {

using Clock = std::chrono::steady_clock;

enum class RequestState { kWaiting, kRunning, kFinished };

// Why a request ended. kStop: EOS, a stop token or a stop string; kLength:
// max_tokens or the model length; kAbort: cancelled by its client; kError:
// refused after admission (queue timeout, internal error): see the Status.
enum class FinishReason { kNone, kStop, kLength, kAbort, kError };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "abort", "error"

// When and how to stop generating.
struct StopParams {
  int64_t max_tokens = 16;              // generated tokens at most (0: only score the prompt)
  int64_t min_tokens = 0;               // EOS and stop tokens are masked until this many
  bool ignore_eos = false;              // keep going past EOS
  std::vector<int32_t> stop_token_ids;  // extra tokens that stop (not in the text)
  std::vector<std::string> stop;        // stop strings (not in the returned text)
};

// Embeddings: how a request's final hidden states (after the final norm)
// become one vector. kNone: a generation request.
enum class Pooling { kNone, kLast, kMean, kCls };

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
  int32_t rank = 0;                            // prompt tokens: 1 + the tokens more likely
};

// What the engine tells a request's owner after a step (or at its end).
struct RequestDelta {
  std::string text;                           // new text: whole UTF-8 characters, stop strings cut
  std::vector<int32_t> token_ids;             // tokens behind this delta
  std::vector<TokenLogprob> logprobs;         // one per token when logprobs were asked for
  std::vector<TokenLogprob> prompt_logprobs;  // first delta, when asked: prompt tokens 1.. (token 0 has none)
  std::vector<float> embedding;               // embeddings: the pooled, L2-normalized state (final delta)
  FinishReason finish = FinishReason::kNone;  // set on the last delta only
  Status error;                               // with kError: what went wrong (Unavailable = retry)
  int64_t prompt_tokens = 0;                  // usage, filled on every delta
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

// Receives a request's deltas, on the engine thread. Implementations must be
// thread-safe and must not block for long (post the work elsewhere).
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  virtual void on_delta(RequestDelta delta) = 0;
};

struct RequestTimes {
  Clock::time_point arrival;  // submit
  Clock::time_point first_scheduled;
  Clock::time_point first_token;
  Clock::time_point last_token;
};

class Request : public std::enable_shared_from_this<Request> {
 public:
  Request(RequestId id, std::vector<int32_t> prompt, SamplingParams sampling, StopParams stop,
          std::shared_ptr<RequestSink> sink);

  // ---- set before submit, read-only afterwards ----
  const RequestId id;
  const int64_t num_prompt_tokens;
  SamplingParams sampling;
  StopParams stop;
  int priority = 0;        // policy "priority": lower runs first
  std::string cache_salt;  // requests with different salts never share KV pages
  // Prompt logprobs: each prompt token's logprob under the model, with the
  // top `prompt_logprobs` (-1: not asked). Such a request computes its
  // whole prompt (no prefix-cache hits), in chunks: a step scores at most
  // kMaxPromptLogitRows prompt tokens over all requests.
  int32_t prompt_logprobs = -1;
  // Embeddings: pool the prompt's final hidden states into `embedding`
  // (with max_tokens 0: nothing is generated). kMean and kCls need every
  // prompt token computed, so they take no prefix-cache hits.
  Pooling pooling = Pooling::kNone;
  static constexpr int64_t kMaxPromptLogitRows = 256;
  std::shared_ptr<RequestSink> sink;
  // Structured output: the grammar the generated tokens must follow (its
  // token mask is applied before sampling). Set before submit; advanced on
  // the engine thread only.
  std::unique_ptr<structured::GrammarMatcher> grammar;
  // This step's token mask of `grammar` and how computing it went: written
  // by the engine's mask task while the forward pass runs, then
  // grammar_mask_ready is set (release); the engine thread reads them once
  // it sees the flag (acquire), and only then touches `grammar` again.
  structured::TokenMask grammar_mask;
  Status grammar_mask_status;
  std::atomic<bool> grammar_mask_ready{false};
  int64_t grammar_mask_us = 0;  // how long the last mask took (the task orders its requests by it)
  // A mask not ready in time (EngineCore::settle_grammar_masks): the request sits
  // out of the batch, its row of logits kept here, until the mask is ready
  // and it samples from them (engine thread; the scheduler neither
  // schedules nor preempts it meanwhile). Empty otherwise.
  std::vector<float> late_logits;
  bool mask_late() const { return !late_logits.empty(); }

  // ---- any thread ----
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

  // ---- engine thread only ----
  std::vector<int32_t> tokens;      // prompt followed by the generated tokens
  int64_t num_computed_tokens = 0;  // tokens whose K/V are in the pages
  int64_t num_cached_tokens = 0;    // of the prompt, served by the prefix cache
  RequestState state = RequestState::kWaiting;
  FinishReason finish = FinishReason::kNone;
  int num_preemptions = 0;
  RequestTimes times;
  std::optional<RequestRng> rng;                // made at first sampling
  std::unique_ptr<StreamingDetokenizer> detok;  // made at first sampling
  std::string text;                             // generated text so far (stop strings cut)
  size_t text_sent = 0;                         // bytes of `text` already delivered
  int64_t tokens_sent = 0;                      // output tokens already delivered
  bool queue_time_recorded = false;
  std::vector<TokenLogprob> pending_logprobs;
  std::vector<TokenLogprob> prompt_lps;  // scored prompt tokens not yet delivered
  int64_t prompt_scored = 0;             // prompt tokens 1..prompt_scored are scored
  std::vector<float> pooled;             // embeddings: the sum (kMean) or the chosen row so far
  std::vector<float> embedding;          // embeddings: the result, for the final delta

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  bool finished() const { return state == RequestState::kFinished; }
  // Whether its steps return final hidden states (embeddings).
  bool wants_hidden() const { return pooling != Pooling::kNone; }
  // Whether every prompt token must be computed (no prefix-cache hits).
  bool computes_whole_prompt() const {
    return needs_prompt_logits() || pooling == Pooling::kMean || pooling == Pooling::kCls;
  }
  // Prompt tokens still to score (prompt logprobs asked for).
  bool needs_prompt_logits() const { return prompt_logprobs >= 0 && prompt_scored < num_prompt_tokens - 1; }

 private:
  std::atomic<bool> cancelled_{false};
};

}  // namespace pagoda
