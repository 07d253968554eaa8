// ArrivalProcess: mean rate and dispersion of the gaps over many draws.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "bench/arrivals.h"

using namespace pagoda::bench;

namespace {

struct Moments {
  double mean, cv;
};

Moments draw(ArrivalProcess& p, int n) {
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double g = p.next_gap_s();
    REQUIRE(g >= 0);
    sum += g;
    sum2 += g * g;
  }
  const double mean = sum / n;
  const double var = sum2 / n - mean * mean;
  return {mean, std::sqrt(var) / mean};
}

}  // namespace

TEST_CASE("bench: Poisson arrivals have mean gap 1/rate and CV 1", "[bench][arrivals]") {
  auto p = ArrivalProcess::create(8.0, 1.0, 42);
  REQUIRE(p.is_ok());
  const Moments m = draw(*p, 200000);
  CHECK(m.mean == Approx(1 / 8.0).epsilon(0.01));
  CHECK(m.cv == Approx(1.0).epsilon(0.02));
}

TEST_CASE("bench: gamma arrivals keep the rate and have CV 1/sqrt(burstiness)", "[bench][arrivals]") {
  for (double b : {0.25, 0.5, 2.0, 4.0}) {
    auto p = ArrivalProcess::create(20.0, b, 7);
    REQUIRE(p.is_ok());
    const Moments m = draw(*p, 200000);
    INFO("burstiness " << b);
    CHECK(m.mean == Approx(1 / 20.0).epsilon(0.02));
    CHECK(m.cv == Approx(1 / std::sqrt(b)).epsilon(0.03));
  }
}

TEST_CASE("bench: counting arrivals in windows gives Poisson dispersion", "[bench][arrivals]") {
  // Arrivals per 1 s window at rate 10: mean 10 and variance 10 (index of dispersion 1).
  auto p = ArrivalProcess::create(10.0, 1.0, 3);
  REQUIRE(p.is_ok());
  std::vector<int> counts(20000, 0);
  double t = 0;
  while (true) {
    t += p->next_gap_s();
    if (t >= static_cast<double>(counts.size())) break;
    ++counts[static_cast<size_t>(t)];
  }
  double mean = 0, var = 0;
  for (int c : counts) mean += c;
  mean /= static_cast<double>(counts.size());
  for (int c : counts) var += (c - mean) * (c - mean);
  var /= static_cast<double>(counts.size());
  CHECK(mean == Approx(10).epsilon(0.01));
  CHECK(var / mean == Approx(1).epsilon(0.05));
}

TEST_CASE("bench: infinite rate sends at once and bad parameters are rejected", "[bench][arrivals]") {
  auto p = ArrivalProcess::create(std::numeric_limits<double>::infinity(), 1.0, 1);
  REQUIRE(p.is_ok());
  CHECK(p->unlimited());
  for (int i = 0; i < 10; ++i) CHECK(p->next_gap_s() == 0);
  CHECK_FALSE(ArrivalProcess::create(0, 1, 1).is_ok());
  CHECK_FALSE(ArrivalProcess::create(-1, 1, 1).is_ok());
  CHECK_FALSE(ArrivalProcess::create(std::nan(""), 1, 1).is_ok());
  CHECK_FALSE(ArrivalProcess::create(1, 0, 1).is_ok());
  // Same seed, same gaps.
  auto a = ArrivalProcess::create(5, 0.5, 9), b = ArrivalProcess::create(5, 0.5, 9);
  for (int i = 0; i < 100; ++i) CHECK(a->next_gap_s() == b->next_gap_s());
}
