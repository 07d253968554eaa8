// Next-token sampling: SamplingParams (one request's knobs), RequestRng (one
// request's random stream) and Sampler (logits -> token, with logprobs).
//
// Processing order, as in vLLM v1: logit_bias, then repetition penalty, then
// frequency and presence penalties; then either argmax (temperature 0) or
// temperature scaling, min-p, top-k, top-p (each filter renormalizes what the
// previous one kept) and one uniform draw from the request's RequestRng.
// Stop tokens are the scheduler's business, not the sampler's.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "common/status.h"

namespace pagoda {

// One request's sampling parameters (OpenAI / vLLM names and meanings).
// A plain value; validate() before use.
struct SamplingParams {
  float temperature = 1.0f;             // 0 (below 1e-5) means greedy: argmax
  int32_t top_k = 0;                    // keep the k most likely; 0 or -1 = off
  float top_p = 1.0f;                   // nucleus mass in (0, 1]; 1 = off
  float min_p = 0.0f;                   // drop p < min_p * p_max; 0 = off
  std::optional<uint64_t> seed;         // none: the server picks a random seed
  float repetition_penalty = 1.0f;      // > 0; 1 = off. Prompt and output tokens
  float presence_penalty = 0.0f;        // [-2, 2]; output tokens only
  float frequency_penalty = 0.0f;       // [-2, 2]; output tokens only
  std::map<int32_t, float> logit_bias;  // id -> added to its logit (-inf bans)
  int32_t logprobs = -1;                // -1 = off; 0 = the chosen token's logprob; n = also the top n

  static constexpr int32_t kMaxLogprobs = 20;
  static constexpr float kGreedyBelow = 1e-5f;

  bool greedy() const { return temperature < kGreedyBelow; }
  // InvalidArgument naming the field and its allowed values.
  Status validate(int32_t vocab_size) const;
};

// A request's own random stream (xoshiro256**, seeded through splitmix64),
// so its samples depend only on its seed, never on the rest of the batch.
// A value owned by the request; not thread-safe.
class RequestRng {
 public:
  explicit RequestRng(uint64_t seed);
  // Seeded from `seed`, or from a fresh random seed when it is empty.
  static RequestRng from_optional(const std::optional<uint64_t>& seed);

  uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double next_double();
  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
  uint64_t s_[4];
};

struct SampleResult {
  int32_t token = -1;
  // Logprob of `token` and the top-n (id, logprob), most likely first, when
  // params.logprobs >= 0 (n = params.logprobs; else NaN and empty). These are log-softmax of the
  // processed logits: after logit_bias and penalties, divided by the
  // temperature (1 when greedy), before min-p/top-k/top-p truncation.
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top_logprobs;
  int32_t rank = 0;  // score() only: 1 + the number of tokens more likely than `token`
};

// Picks the next token from one row of logits. Owns scratch buffers reused
// across calls, so keep one per thread (the engine thread); not thread-safe.
class Sampler {
 public:
  // `logits` has one entry per vocabulary id. Token ids outside it in
  // `prompt_tokens`, `generated_tokens` or logit_bias are ignored. Draws
  // exactly one number from `rng` unless greedy. If every logit is -inf or
  // NaN after processing, returns the argmax of the raw logits.
  SampleResult sample(std::span<const float> logits, const SamplingParams& params, RequestRng& rng,
                      std::span<const int32_t> prompt_tokens, std::span<const int32_t> generated_tokens);
  // The logprob of a given `token` under the raw `logits` (their log-softmax,
  // no sampling parameters applied), its rank, and the top `top_n`: how
  // prompt tokens are scored. The same numbers sample() reports for a token
  // drawn with temperature 1 (or greedy), no penalties and no logit_bias.
  SampleResult score(std::span<const float> logits, int32_t token, int32_t top_n);

 private:
  void apply_penalties(const SamplingParams& params, std::span<const int32_t> prompt_tokens,
                       std::span<const int32_t> generated_tokens);
  int32_t draw(const SamplingParams& params, RequestRng& rng);
  void fill_logprobs(const SamplingParams& params, SampleResult& result);

  std::vector<float> work_;       // processed logits
  std::vector<int32_t> counts_;   // per-id output counts (all zero between calls)
  std::vector<uint8_t> seen_;     // per-id seen flags (all zero between calls)
  std::vector<int32_t> touched_;  // ids whose counts_/seen_ are set
  struct Candidate {
    float weight;  // exp(logit - max logit)
    int32_t id;
  };
  std::vector<float> weight_;    // exp(processed logit - max)
  std::vector<Candidate> cand_;  // candidates still in the running
};

}  // namespace pagoda
