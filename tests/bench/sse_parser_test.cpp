// SseParser and parse_prometheus: byte streams split at every position.
#include <catch2/catch.hpp>

#include "bench/server_metrics.h"
#include "bench/sse_parser.h"

using namespace pagoda::bench;

TEST_CASE("bench: SSE events survive any split of the byte stream", "[bench][sse]") {
  const std::string stream =
      "data: {\"a\":1}\n\n"
      ": a comment\n"
      "event: message\r\ndata: {\"b\":2}\r\n\r\n"
      "data: line1\ndata: line2\n\n"
      "data: [DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "{\"b\":2}", "line1\nline2", "[DONE]"};
  for (size_t cut1 = 0; cut1 <= stream.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= stream.size(); cut2 += 7) {
      SseParser p;
      std::vector<std::string> got;
      for (auto part : {stream.substr(0, cut1), stream.substr(cut1, cut2 - cut1), stream.substr(cut2)})
        for (auto& e : p.feed(part)) got.push_back(e);
      INFO("cuts " << cut1 << " " << cut2);
      REQUIRE(got == want);
      CHECK(p.pending() == 0);
    }
  }
}

TEST_CASE("bench: an incomplete event is held back", "[bench][sse]") {
  SseParser p;
  CHECK(p.feed("data: {\"x\"").empty());
  CHECK(p.feed(":1}\n").empty());
  CHECK(p.pending() > 0);
  CHECK(p.feed("\n") == std::vector<std::string>{"{\"x\":1}"});
}

TEST_CASE("bench: Prometheus text parses samples with and without labels", "[bench][metrics]") {
  const std::string text =
      "# HELP pagoda_kv_usage_ratio Share.\n# TYPE pagoda_kv_usage_ratio gauge\n"
      "pagoda_kv_usage_ratio 0.25\n"
      "pagoda_requests_finished_total{reason=\"stop\"} 12\n"
      "pagoda_ttft_bucket{le=\"0.5 s\"} 3 1700000000\n"
      "garbage\n"
      "pagoda_generation_tokens_total 1.5e3\n";
  const auto m = parse_prometheus(text);
  CHECK(sample(m, "pagoda_kv_usage_ratio") == 0.25);
  CHECK(sample(m, "pagoda_requests_finished_total{reason=\"stop\"}") == 12);
  CHECK(sample(m, "pagoda_ttft_bucket{le=\"0.5 s\"}") == 3);
  CHECK(sample(m, "pagoda_generation_tokens_total") == 1500);
  CHECK_FALSE(sample(m, "garbage").has_value());
  auto later = m;
  later["pagoda_generation_tokens_total"] = 1600;
  CHECK(delta(m, later, "pagoda_generation_tokens_total") == 100);
  CHECK_FALSE(delta(m, later, "missing").has_value());
}
