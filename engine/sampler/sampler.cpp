#include "engine/sampler/sampler.h"

#include "engine/kernels/sampler_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

namespace pagoda {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Index of the first largest value; NaN never wins. -1 if all are NaN/-inf.
int32_t argmax(std::span<const float> v) {
  const float m = sampler_math::max_value(v.data(), v.size());
  if (!(m > kNegInf)) return -1;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == m) return static_cast<int32_t>(i);
  }
  return -1;
}

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Status SamplingParams::validate(int32_t vocab_size) const {
  auto bad = [](const char* field, const std::string& m) { return Status::invalid_argument(m).with_field(field); };
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) {
    return bad("temperature",
               "temperature must be a finite number >= 0 (0 = greedy), got " + std::to_string(temperature));
  }
  if (top_k < -1) return bad("top_k", "top_k must be -1, 0 (off) or a positive count, got " + std::to_string(top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return bad("top_p", "top_p must be in (0, 1], got " + std::to_string(top_p));
  }
  if (!(min_p >= 0.0f && min_p <= 1.0f)) {
    return bad("min_p", "min_p must be in [0, 1], got " + std::to_string(min_p));
  }
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
    return bad("repetition_penalty",
               "repetition_penalty must be a finite number > 0 (1 = off), got " + std::to_string(repetition_penalty));
  }
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    return bad("presence_penalty", "presence_penalty must be in [-2, 2], got " + std::to_string(presence_penalty));
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    return bad("frequency_penalty", "frequency_penalty must be in [-2, 2], got " + std::to_string(frequency_penalty));
  }
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return bad("logit_bias", "logit_bias token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                   std::to_string(vocab_size) + ")");
    }
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity()) {
      return bad("logit_bias", "logit_bias for token " + std::to_string(id) +
                                   " must be a number or -inf (to ban it), not NaN or +inf");
    }
  }
  if (logprobs < -1 || logprobs > kMaxLogprobs) {
    return bad("logprobs", "logprobs must be -1 (off) or in [0, " + std::to_string(kMaxLogprobs) + "], got " +
                               std::to_string(logprobs));
  }
  return Status::ok();
}

RequestRng::RequestRng(uint64_t seed) : seed_(seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

RequestRng RequestRng::from_optional(const std::optional<uint64_t>& seed) {
  if (seed) return RequestRng(*seed);
  std::random_device rd;
  const uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return RequestRng(s);
}

uint64_t RequestRng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double RequestRng::next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

void Sampler::apply_penalties(const SamplingParams& params, std::span<const int32_t> prompt_tokens,
                              std::span<const int32_t> generated_tokens) {
  const auto n = static_cast<int32_t>(work_.size());
  if (seen_.size() < work_.size()) seen_.resize(work_.size(), 0);
  if (counts_.size() < work_.size()) counts_.resize(work_.size(), 0);

  if (params.repetition_penalty != 1.0f) {
    const float rp = params.repetition_penalty;
    touched_.clear();
    for (auto tokens : {prompt_tokens, generated_tokens}) {
      for (int32_t t : tokens) {
        if (t < 0 || t >= n || seen_[static_cast<size_t>(t)]) continue;
        seen_[static_cast<size_t>(t)] = 1;
        touched_.push_back(t);
        float& l = work_[static_cast<size_t>(t)];
        l = l > 0.0f ? l / rp : l * rp;
      }
    }
    for (int32_t t : touched_) seen_[static_cast<size_t>(t)] = 0;
  }

  if (params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f) {
    touched_.clear();
    for (int32_t t : generated_tokens) {
      if (t < 0 || t >= n) continue;
      if (counts_[static_cast<size_t>(t)]++ == 0) touched_.push_back(t);
    }
    for (int32_t t : touched_) {
      int32_t& c = counts_[static_cast<size_t>(t)];
      work_[static_cast<size_t>(t)] -= params.frequency_penalty * static_cast<float>(c) + params.presence_penalty;
      c = 0;
    }
  }
}

int32_t Sampler::draw(const SamplingParams& params, RequestRng& rng) {
  const double u01 = rng.next_double();  // exactly one draw per sampled token
  const size_t n = work_.size();
  if (params.temperature != 1.0f) {
    const float inv_t = 1.0f / params.temperature;
    for (float& l : work_) l *= inv_t;
  }
  const float m = sampler_math::max_value(work_.data(), n);
  if (!(m > kNegInf)) return -1;
  weight_.resize(n);
  const double total = sampler_math::exp_minus(work_.data(), m, weight_.data(), n);
  const bool use_k = params.top_k > 0 && static_cast<size_t>(params.top_k) < n;
  const bool use_p = params.top_p < 1.0f;

  if (params.min_p <= 0.0f && !use_k && !use_p) {
    // Plain sampling: find the block holding the draw, then the id in it.
    const double u = u01 * total;
    constexpr size_t kBlock = 512;
    double acc = 0.0;
    size_t i = 0;
    for (; i + kBlock < n; i += kBlock) {
      const double b = sampler_math::sum(weight_.data() + i, kBlock);
      if (u < acc + b) break;
      acc += b;
    }
    int32_t last = -1;
    for (; i < n; ++i) {
      if (weight_[i] <= 0.0f) continue;
      last = static_cast<int32_t>(i);
      acc += weight_[i];
      if (u < acc) return last;
    }
    if (last >= 0) return last;  // rounding: u fell just past the end
    return argmax(work_);
  }

  // Candidates, in the vLLM order min-p -> top-k -> top-p. The weights are
  // exp(logit - max), so min-p is simply weight >= min_p.
  float floor = std::max(params.min_p, 0.0f);
  const bool pruned = use_p && params.min_p <= 0.0f && !use_k;
  if (pruned) {
    // Tokens lighter than (1 - top_p) * total / n together hold less than
    // 1 - top_p of the mass, so the nucleus never reaches them.
    floor = static_cast<float>((1.0 - params.top_p) * total / static_cast<double>(n));
  }
  // Deterministic order: heavier first, lower id on ties.
  auto desc = [](const Candidate& a, const Candidate& b) {
    return a.weight > b.weight || (a.weight == b.weight && a.id < b.id);
  };
  cand_.clear();
  if (use_k) {
    // The k heaviest in one pass: a heap of size k whose top is the
    // lightest kept (O(n log k), and the branch is rarely taken).
    const auto k = static_cast<size_t>(params.top_k);
    for (size_t i = 0; i < n; ++i) {
      const float w = weight_[i];
      if (!(w >= floor && w > 0.0f)) continue;
      const Candidate c{w, static_cast<int32_t>(i)};
      if (cand_.size() < k) {
        cand_.push_back(c);
        std::push_heap(cand_.begin(), cand_.end(), desc);
      } else if (desc(c, cand_.front())) {
        std::pop_heap(cand_.begin(), cand_.end(), desc);
        cand_.back() = c;
        std::push_heap(cand_.begin(), cand_.end(), desc);
      }
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      if (weight_[i] >= floor && weight_[i] > 0.0f) cand_.push_back({weight_[i], static_cast<int32_t>(i)});
    }
  }
  auto mass = [this](size_t from, size_t to) {
    double z = 0.0;
    for (size_t i = from; i < to; ++i) z += cand_[i].weight;
    return z;
  };
  double kept = pruned ? total : mass(0, cand_.size());  // pruned: the nucleus of all
  if (use_p && cand_.size() > 1) {
    // Keep the smallest most-likely prefix holding top_p of the mass, found
    // by a weighted quickselect (expected O(n), no full sort). Invariant:
    // the first `lo` candidates are the most likely and hold < need, the
    // first `hi` hold >= need.
    const double need = static_cast<double>(params.top_p) * kept;
    size_t lo = 0, hi = cand_.size();
    double acc = 0.0;  // mass of the first lo
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      std::nth_element(cand_.begin() + static_cast<ptrdiff_t>(lo), cand_.begin() + static_cast<ptrdiff_t>(mid),
                       cand_.begin() + static_cast<ptrdiff_t>(hi), desc);
      const double upper = mass(lo, mid);
      if (acc + upper >= need) {
        hi = mid;
      } else {
        acc += upper;
        lo = mid;
      }
    }
    // Each step left [0, lo) >= [lo, hi) >= [hi, end), so [0, hi) is the top-hi.
    cand_.resize(hi);
  }
  kept = mass(0, cand_.size());
  const double u = u01 * kept;
  double acc = 0.0;
  for (const Candidate& c : cand_) {
    acc += c.weight;
    if (u < acc) return c.id;
  }
  return cand_.empty() ? argmax(work_) : cand_.back().id;
}

void Sampler::fill_logprobs(const SamplingParams& params, SampleResult& result) {
  if (params.logprobs < 0 || result.token < 0) {
    result.logprob = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  const size_t n = work_.size();
  const float m = sampler_math::max_value(work_.data(), n);
  weight_.resize(n);
  const double log_z = static_cast<double>(m) + std::log(sampler_math::exp_minus(work_.data(), m, weight_.data(), n));
  auto lp = [&](int32_t id) { return static_cast<float>(static_cast<double>(work_[static_cast<size_t>(id)]) - log_z); };
  result.logprob = lp(result.token);
  // The k largest logits in one pass: a small array kept sorted (largest
  // first, lower id first on ties since ids arrive in order).
  const size_t k = std::min(static_cast<size_t>(params.logprobs), n);
  cand_.clear();
  for (size_t i = 0; k > 0 && i < n; ++i) {
    const float l = work_[i];
    if (!(l > -std::numeric_limits<float>::infinity())) continue;  // banned (logit_bias, a grammar's mask)
    if (cand_.size() == k && !(l > cand_.back().weight)) continue;
    if (cand_.size() == k) cand_.pop_back();
    auto pos = std::find_if(cand_.begin(), cand_.end(), [l](const Candidate& c) { return l > c.weight; });
    cand_.insert(pos, {l, static_cast<int32_t>(i)});  // `weight` holds the logit here
  }
  result.top_logprobs.clear();
  for (const Candidate& c : cand_) result.top_logprobs.emplace_back(c.id, lp(c.id));
}

SampleResult Sampler::sample(std::span<const float> logits, const SamplingParams& params, RequestRng& rng,
                             std::span<const int32_t> prompt_tokens, std::span<const int32_t> generated_tokens) {
  SampleResult result;
  if (logits.empty()) return result;
  work_.assign(logits.begin(), logits.end());
  const auto n = static_cast<int32_t>(work_.size());
  for (const auto& [id, bias] : params.logit_bias) {
    if (id >= 0 && id < n) work_[static_cast<size_t>(id)] += bias;
  }
  if (params.repetition_penalty != 1.0f || params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f) {
    apply_penalties(params, prompt_tokens, generated_tokens);
  }
  result.token = params.greedy() ? argmax(work_) : draw(params, rng);
  if (result.token < 0) {  // nothing left: every logit was -inf or NaN
    result.token = std::max(argmax(logits), 0);
    result.logprob = std::numeric_limits<float>::quiet_NaN();
    return result;
  }
  fill_logprobs(params, result);
  return result;
}

SampleResult Sampler::score(std::span<const float> logits, int32_t token, int32_t top_n) {
  SampleResult result;
  if (logits.empty() || token < 0 || static_cast<size_t>(token) >= logits.size()) return result;
  work_.assign(logits.begin(), logits.end());
  result.token = token;
  SamplingParams params;
  params.logprobs = top_n;
  fill_logprobs(params, result);
  const float mine = work_[static_cast<size_t>(token)];
  result.rank = 1;
  for (float l : work_) result.rank += l > mine ? 1 : 0;
  return result;
}

}  // namespace pagoda
