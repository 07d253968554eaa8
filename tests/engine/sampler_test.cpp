// Sampler, SamplingParams and RequestRng tests, against plain references
// (argmax loop, sorted softmax, hand-computed penalties) written here.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "engine/kernels/sampler_math.h"
#include "engine/sampler/sampler.h"
#include "tests/engine/isa_levels.h"

using namespace pagoda;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> random_logits(size_t n, uint32_t seed, float scale = 3.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

std::vector<double> softmax(const std::vector<float>& l, double temperature = 1.0) {
  double m = -1e300;
  for (float x : l) m = std::max(m, x / temperature);
  std::vector<double> p(l.size());
  double z = 0;
  for (size_t i = 0; i < l.size(); ++i) z += p[i] = std::exp(l[i] / temperature - m);
  for (double& x : p) x /= z;
  return p;
}

// Ids sorted by probability, most likely first.
std::vector<int32_t> by_prob(const std::vector<double>& p) {
  std::vector<int32_t> ids(p.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  return ids;
}

// Pearson chi-square of observed counts against expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int draws) {
  double chi = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = p[i] * draws;
    if (e > 0) chi += (counts[i] - e) * (counts[i] - e) / e;
    else CHECK(counts[i] == 0);
  }
  return chi;
}

std::vector<int> draw_counts(const std::vector<float>& logits, const SamplingParams& params, uint64_t seed, int draws) {
  Sampler s;
  RequestRng rng(seed);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    const int32_t t = s.sample(logits, params, rng, {}, {}).token;
    REQUIRE(t >= 0);
    REQUIRE(t < static_cast<int32_t>(logits.size()));
    ++counts[static_cast<size_t>(t)];
  }
  return counts;
}

std::vector<double> log_softmax(const std::vector<float>& l) {
  double m = -1e300;
  for (float x : l) m = std::max<double>(m, x);
  double z = 0;
  for (float x : l) z += std::exp(x - m);
  std::vector<double> out;
  for (float x : l) out.push_back(x - m - std::log(z));
  return out;
}

// With temperature 0 and logprobs = vocab size, the returned logprobs are
// log-softmax of the processed logits: recover them up to a constant.
void check_processed(const std::vector<float>& logits, const SamplingParams& base, const std::vector<int32_t>& prompt,
                     const std::vector<int32_t>& gen, const std::vector<float>& expected) {
  SamplingParams p = base;
  p.temperature = 0;
  p.logprobs = static_cast<int32_t>(logits.size());
  Sampler s;
  RequestRng rng(1);
  const SampleResult r = s.sample(logits, p, rng, prompt, gen);
  const auto ref = log_softmax(expected);
  REQUIRE(r.top_logprobs.size() == logits.size());
  for (const auto& [id, lp] : r.top_logprobs) CHECK(lp == Approx(ref[static_cast<size_t>(id)]).margin(1e-5));
  const auto top = std::max_element(expected.begin(), expected.end()) - expected.begin();
  CHECK(r.token == top);
}

}  // namespace

TEST_CASE("greedy is the argmax", "[sampler]") {
  Sampler s;
  RequestRng rng(7);
  SamplingParams p;
  p.temperature = 0;
  for (uint32_t seed = 0; seed < 50; ++seed) {
    const auto l = random_logits(1000 + seed, seed);
    int32_t ref = 0;
    for (size_t i = 1; i < l.size(); ++i)
      if (l[i] > l[static_cast<size_t>(ref)]) ref = static_cast<int32_t>(i);
    CHECK(s.sample(l, p, rng, {}, {}).token == ref);
  }
  // Ties go to the lowest id; greedy draws nothing from the rng.
  const std::vector<float> tie = {0.0f, 5.0f, 1.0f, 5.0f};
  RequestRng a(3), b(3);
  CHECK(s.sample(tie, p, a, {}, {}).token == 1);
  CHECK(a.next_u64() == b.next_u64());
}

TEST_CASE("the seed alone decides the sequence", "[sampler]") {
  const auto l = random_logits(500, 11, 1.0f);
  SamplingParams p;
  p.top_p = 0.9f;
  p.top_k = 100;
  auto run = [&](uint64_t seed, Sampler& s) {
    RequestRng rng(seed);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(l, p, rng, {}, {}).token);
    return out;
  };
  Sampler s1, s2;
  const auto a = run(42, s1);
  CHECK(a == run(42, s2));
  CHECK(a != run(43, s1));
  // Interleaving two requests on one Sampler does not change either stream.
  RequestRng r1(42), r2(43);
  std::vector<int32_t> inter;
  const auto other = random_logits(500, 12);
  for (int i = 0; i < 64; ++i) {
    inter.push_back(s1.sample(l, p, r1, {}, {}).token);
    (void)s1.sample(other, SamplingParams{}, r2, {}, {});
  }
  CHECK(inter == a);
  CHECK(RequestRng(5).next_u64() == RequestRng(5).next_u64());
  CHECK(RequestRng::from_optional(std::nullopt).seed() != RequestRng::from_optional(std::nullopt).seed());
  CHECK(RequestRng::from_optional(9).seed() == 9);
}

TEST_CASE("frequencies at temperature 1 and 0.5 match softmax", "[sampler]") {
  const std::vector<float> l = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 1.5f, -0.5f};
  constexpr int kDraws = 200000;
  // df = 7: P(chi2 > 24.32) = 0.001.
  for (float t : {1.0f, 0.5f}) {
    SamplingParams p;
    p.temperature = t;
    const auto counts = draw_counts(l, p, 2024, kDraws);
    const auto expected = softmax(l, t);
    CHECK(chi_square(counts, expected, kDraws) < 24.32);
    for (size_t i = 0; i < l.size(); ++i) {
      const double sd = std::sqrt(expected[i] * (1 - expected[i]) / kDraws);
      CHECK(std::abs(counts[i] / double(kDraws) - expected[i]) < 5 * sd);
    }
  }
}

TEST_CASE("top-k never leaves the top k and keeps their proportions", "[sampler]") {
  const auto l = random_logits(300, 5, 1.0f);
  const auto prob = softmax(l);
  const auto order = by_prob(prob);
  for (int k : {1, 2, 5, 40}) {
    SamplingParams p;
    p.top_k = k;
    constexpr int kDraws = 20000;
    const auto counts = draw_counts(l, p, 77 + static_cast<uint64_t>(k), kDraws);
    const std::set<int32_t> allowed(order.begin(), order.begin() + k);
    std::vector<double> renorm(l.size(), 0.0);
    double mass = 0;
    for (int32_t id : allowed) mass += prob[static_cast<size_t>(id)];
    for (int32_t id : allowed) renorm[static_cast<size_t>(id)] = prob[static_cast<size_t>(id)] / mass;
    for (size_t i = 0; i < l.size(); ++i) {
      if (!allowed.count(static_cast<int32_t>(i))) CHECK(counts[i] == 0);
    }
    if (k == 5) CHECK(chi_square(counts, renorm, kDraws) < 18.47);  // df 4, p = 0.001
  }
}

TEST_CASE("top-p never leaves the nucleus", "[sampler]") {
  for (size_t vocab : {size_t{50}, size_t{32000}}) {
    // Flat logits on the large vocabulary put thousands of ids in the
    // nucleus (past the sorted head of 1024).
    const auto l = random_logits(vocab, 8, vocab > 1000 ? 0.3f : 2.0f);
    const auto prob = softmax(l);
    const auto order = by_prob(prob);
    for (float top_p : {0.1f, 0.5f, 0.9f}) {
      size_t n = 0;
      double acc = 0;
      while (acc < top_p) acc += prob[static_cast<size_t>(order[n++])];
      const std::set<int32_t> nucleus(order.begin(), order.begin() + static_cast<ptrdiff_t>(n));
      INFO("vocab " << vocab << " top_p " << top_p << " nucleus " << n);
      SamplingParams p;
      p.top_p = top_p;
      const auto counts = draw_counts(l, p, 99, vocab > 1000 ? 600 : 5000);
      int outside = 0, inside_seen = 0;
      for (size_t i = 0; i < vocab; ++i) {
        if (!nucleus.count(static_cast<int32_t>(i))) outside += counts[i];
        else inside_seen += counts[i] > 0;
      }
      CHECK(outside == 0);
      if (vocab == 50) CHECK(inside_seen == static_cast<int>(n));
      if (vocab > 1000 && top_p > 0.5f) CHECK(n > 1024);
    }
  }
}

TEST_CASE("min-p drops tokens below min_p * p_max", "[sampler]") {
  const auto l = random_logits(200, 21, 1.5f);
  const auto prob = softmax(l);
  const double pmax = *std::max_element(prob.begin(), prob.end());
  for (float min_p : {0.05f, 0.3f, 0.9f}) {
    SamplingParams p;
    p.min_p = min_p;
    const auto counts = draw_counts(l, p, 5, 5000);
    for (size_t i = 0; i < l.size(); ++i) {
      if (prob[i] < min_p * pmax * (1 - 1e-5)) CHECK(counts[i] == 0);
    }
    // Combined with temperature: min-p acts on the tempered distribution.
    p.temperature = 2.0f;
    const auto hot = softmax(l, 2.0);
    const double hmax = *std::max_element(hot.begin(), hot.end());
    const auto c2 = draw_counts(l, p, 6, 5000);
    for (size_t i = 0; i < l.size(); ++i) {
      if (hot[i] < min_p * hmax * (1 - 1e-5)) CHECK(c2[i] == 0);
    }
  }
}

TEST_CASE("penalties match hand-computed logits", "[sampler]") {
  const std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
  const std::vector<int32_t> prompt = {0, 0, 99999};  // out-of-vocab ids are ignored
  const std::vector<int32_t> gen = {1, 1, 3, -4};
  SECTION("repetition: divide positive, multiply negative, prompt and output") {
    SamplingParams p;
    p.repetition_penalty = 2.0f;
    check_processed(l, p, prompt, gen, {1.0f, -2.0f, 0.5f, 1.5f, 1.0f});
  }
  SECTION("frequency: subtract count times penalty, output only") {
    SamplingParams p;
    p.frequency_penalty = 0.5f;
    check_processed(l, p, prompt, gen, {2.0f, -2.0f, 0.5f, 2.5f, 1.0f});
  }
  SECTION("presence: subtract once, output only") {
    SamplingParams p;
    p.presence_penalty = 1.5f;
    check_processed(l, p, prompt, gen, {2.0f, -2.5f, 0.5f, 1.5f, 1.0f});
  }
  SECTION("all three, repetition first") {
    SamplingParams p;
    p.repetition_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    check_processed(l, p, prompt, gen, {1.0f, -3.25f, 0.5f, 0.75f, 1.0f});
  }
  SECTION("repetition can change the greedy choice") {
    SamplingParams p;
    p.repetition_penalty = 3.0f;
    check_processed(l, p, {}, {3}, {2.0f, -1.0f, 0.5f, 1.0f, 1.0f});
  }
}

TEST_CASE("logit bias forces and bans tokens", "[sampler]") {
  const auto l = random_logits(1000, 3);
  const auto order = by_prob(softmax(l));
  SamplingParams ban;
  ban.logit_bias[order[0]] = -kInf;
  ban.temperature = 0;
  Sampler s;
  RequestRng rng(1);
  CHECK(s.sample(l, ban, rng, {}, {}).token == order[1]);
  ban.temperature = 1.0f;
  ban.logit_bias[order[1]] = -kInf;
  auto counts = draw_counts(l, ban, 4, 3000);
  CHECK(counts[static_cast<size_t>(order[0])] == 0);
  CHECK(counts[static_cast<size_t>(order[1])] == 0);

  SamplingParams force;
  const int32_t least = order.back();
  force.logit_bias[least] = 100.0f;
  counts = draw_counts(l, force, 5, 3000);
  CHECK(counts[static_cast<size_t>(least)] == 3000);

  // Banning everything falls back to the raw argmax instead of failing.
  SamplingParams all;
  for (int32_t i = 0; i < 4; ++i) all.logit_bias[i] = -kInf;
  const std::vector<float> small = {0.0f, 1.0f, 3.0f, 2.0f};
  CHECK(s.sample(small, all, rng, {}, {}).token == 2);
}

TEST_CASE("top-n logprobs are sorted log-softmax of the processed logits", "[sampler]") {
  const auto l = random_logits(2000, 17);
  Sampler s;
  for (float t : {0.0f, 0.7f, 1.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.logprobs = 5;
    p.top_k = 3;  // truncation does not change the reported distribution
    RequestRng rng(8);
    const SampleResult r = s.sample(l, p, rng, {}, {});
    std::vector<float> processed = l;
    if (t > 0)
      for (float& x : processed) x /= t;
    const auto ref = log_softmax(processed);
    const auto order = by_prob(softmax(processed));
    REQUIRE(r.top_logprobs.size() == 5);
    double mass = 0;
    for (size_t i = 0; i < 5; ++i) {
      CHECK(r.top_logprobs[i].first == order[i]);
      CHECK(r.top_logprobs[i].second == Approx(ref[static_cast<size_t>(order[i])]).margin(1e-5));
      if (i > 0) CHECK(r.top_logprobs[i].second <= r.top_logprobs[i - 1].second);
      mass += std::exp(r.top_logprobs[i].second);
    }
    CHECK(mass <= 1.0 + 1e-6);
    CHECK(r.logprob == Approx(ref[static_cast<size_t>(r.token)]).margin(1e-5));
    if (t == 0) CHECK(r.token == order[0]);
  }
  SamplingParams off;
  RequestRng rng(1);
  const SampleResult r = s.sample(l, off, rng, {}, {});
  CHECK(std::isnan(r.logprob));
  CHECK(r.top_logprobs.empty());
}

TEST_CASE("validate names the field and the allowed values", "[sampler]") {
  auto msg = [](auto edit) {
    SamplingParams p;
    edit(p);
    return p.validate(100).message();
  };
  CHECK(SamplingParams{}.validate(100).is_ok());
  CHECK_THAT(msg([](SamplingParams& p) { p.temperature = -1; }), Catch::Contains("temperature"));
  CHECK_THAT(msg([](SamplingParams& p) { p.top_k = -2; }), Catch::Contains("top_k"));
  CHECK_THAT(msg([](SamplingParams& p) { p.top_p = 0; }), Catch::Contains("top_p must be in (0, 1]"));
  CHECK_THAT(msg([](SamplingParams& p) { p.min_p = 1.5f; }), Catch::Contains("min_p"));
  CHECK_THAT(msg([](SamplingParams& p) { p.repetition_penalty = 0; }), Catch::Contains("repetition_penalty"));
  CHECK_THAT(msg([](SamplingParams& p) { p.presence_penalty = 3; }), Catch::Contains("presence_penalty"));
  CHECK_THAT(msg([](SamplingParams& p) { p.frequency_penalty = -3; }), Catch::Contains("frequency_penalty"));
  CHECK_THAT(msg([](SamplingParams& p) { p.logit_bias[100] = 1; }), Catch::Contains("logit_bias token id 100"));
  CHECK_THAT(msg([](SamplingParams& p) { p.logit_bias[3] = std::nanf(""); }), Catch::Contains("logit_bias"));
  CHECK_THAT(msg([](SamplingParams& p) { p.logprobs = 21; }), Catch::Contains("logprobs"));
  SamplingParams ok;
  ok.logit_bias[5] = -kInf;
  ok.top_k = -1;
  ok.temperature = 0;
  CHECK(ok.validate(100).is_ok());
}

TEST_CASE("sampler_math kernels match plain loops", "[sampler]") {
  const testing::IsaLevelScope isa(GENERATE(from_range(testing::test_isa_levels())));
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{5000}, size_t{32000}}) {
    INFO("n = " << n);
    auto x = random_logits(n, static_cast<uint32_t>(n), 20.0f);
    if (n > 3) {
      x[1] = -kInf;
      x[2] = std::nanf("");
      x[3] = -1000.0f;
    }
    float ref_max = -kInf;
    for (float v : x)
      if (v > ref_max) ref_max = v;
    const float m = sampler_math::max_value(x.data(), n);
    CHECK(m == ref_max);
    if (n == 0) continue;
    std::vector<float> out(n, -1.0f);
    const double total = sampler_math::exp_minus(x.data(), m, out.data(), n);
    double ref_total = 0;
    for (size_t i = 0; i < n; ++i) {
      const double d = x[i] - m;  // the float difference, as the kernel computes it
      const double ref = (std::isnan(x[i]) || d < -87.0) ? 0.0 : std::exp(d);
      ref_total += ref;
      if (ref == 0.0) {
        CHECK(out[i] == 0.0f);
      } else {
        INFO("x " << x[i] << " m " << m << " out " << out[i] << " ref " << ref);
        CHECK(std::abs(out[i] - ref) <= 5e-7 * ref + 1e-30);  // abs: near FLT_MIN
      }
    }
    CHECK(total == Approx(ref_total).epsilon(1e-6));
    double ref_sum = 0;
    for (float v : out) ref_sum += v;
    CHECK(sampler_math::sum(out.data(), n) == Approx(ref_sum).epsilon(1e-6));
  }
}

TEST_CASE("top logprobs leave out banned tokens (-inf logits, as a grammar's mask makes them)") {
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {ninf, 1.0f, ninf, 0.5f, ninf};
  SamplingParams p;
  p.temperature = 0;
  p.logprobs = 4;
  Sampler s;
  RequestRng rng(1);
  const SampleResult r = s.sample(logits, p, rng, {}, {});
  CHECK(r.token == 1);
  REQUIRE(r.top_logprobs.size() == 2);
  CHECK(r.top_logprobs[0].first == 1);
  CHECK(r.top_logprobs[1].first == 3);
  for (const auto& [id, lp] : r.top_logprobs) CHECK(std::isfinite(lp));
}

TEST_CASE("sampler: logprobs 0 gives the chosen token's logprob and no alternatives, -1 gives none") {
  const std::vector<float> logits = {0.5f, 2.0f, 1.0f};
  SamplingParams p;
  p.temperature = 0;
  Sampler s;
  RequestRng rng(1);
  CHECK(std::isnan(s.sample(logits, p, rng, {}, {}).logprob));  // default: off
  p.logprobs = 0;
  const SampleResult r = s.sample(logits, p, rng, {}, {});
  CHECK(r.token == 1);
  CHECK(r.top_logprobs.empty());
  const double z = std::log(std::exp(0.5) + std::exp(2.0) + std::exp(1.0));
  CHECK(r.logprob == Approx(2.0 - z).epsilon(1e-5));
}
