#include "scheduler/request_limits.h"

#include <algorithm>
#include <string>

namespace pagoda {

namespace {

Status invalid(const char* field, std::string message) {
  return Status::invalid_argument(std::move(message)).with_field(field);
}

std::string vocabulary(int32_t vocab_size) {
  return " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")";
}

}  // namespace

Status validate_request(const RequestLimits& limits, const Request& r) {
  const int64_t prompt = r.num_prompt_tokens;
  if (prompt == 0) return invalid("prompt", "the prompt is empty");
  for (int32_t t : r.tokens)
    if (t < 0 || t >= limits.vocab_size)
      return invalid("prompt", "prompt token id " + std::to_string(t) + vocabulary(limits.vocab_size));
  const int64_t max_tokens = r.stop.max_tokens;
  // 0 only scores the prompt (prompt logprobs).
  if (max_tokens < (r.prompt_logprobs >= 0 || r.wants_hidden() ? 0 : 1))
    return invalid("max_tokens", "max_tokens must be at least 1 (got " + std::to_string(max_tokens) +
                                     "; 0 only with echo and logprobs, or prompt_logprobs)");
  // Named for what the client can change: the prompt when it alone fills
  // the context, else max_tokens.
  if (prompt + max_tokens > limits.max_model_len)
    return invalid(prompt >= limits.max_model_len ? "prompt" : "max_tokens",
                   "this model's maximum context length is " + std::to_string(limits.max_model_len) +
                       " tokens, but the request has " + std::to_string(prompt) + " prompt tokens and asks for " +
                       std::to_string(max_tokens) + " more (" + std::to_string(prompt + max_tokens) +
                       " in all): shorten the prompt or lower max_tokens");
  if (!limits.chunked_prefill && r.prompt_logprobs < 0 && prompt > limits.max_num_batched_tokens)
    return invalid("prompt", "the prompt has " + std::to_string(prompt) + " tokens but one step takes at most " +
                                 std::to_string(limits.max_num_batched_tokens) +
                                 " (scheduler.max_num_batched_tokens, with chunked_prefill off)");
  const int64_t P = limits.page_size;
  int64_t need = (prompt + max_tokens + P - 1) / P;
  if (limits.sliding_window > 0) need = std::min(need, (limits.sliding_window + P - 1) / P + 2);
  if (need > limits.usable_pages)
    return invalid("max_tokens", "the request needs up to " + std::to_string(need) + " KV pages (" +
                                     std::to_string(prompt + max_tokens) + " tokens) but the pool has " +
                                     std::to_string(limits.usable_pages) + ": lower max_tokens or raise kv.memory_gib");
  for (int32_t t : r.stop.stop_token_ids)
    if (t < 0 || t >= limits.vocab_size)
      return invalid("stop_token_ids", "stop_token_ids: " + std::to_string(t) + vocabulary(limits.vocab_size));
  if (r.stop.min_tokens < 0 || r.stop.min_tokens > max_tokens)
    return invalid("min_tokens", "min_tokens must be between 0 and max_tokens (" + std::to_string(max_tokens) +
                                     "), got " + std::to_string(r.stop.min_tokens));
  return r.sampling.validate(limits.vocab_size);
}

}  // namespace pagoda
