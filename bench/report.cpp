#include "bench/report.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace pagoda::bench {

using nlohmann::json;

namespace {

void line(std::ostream& os, const std::string& label, const std::string& value) {
  os << std::left << std::setw(42) << label << value << "\n";
}

std::string num(double v, int decimals = 2) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << v;
  return s.str();
}

void section(std::ostream& os, const std::string& title) {
  const int width = 54;
  const int pad = std::max<int>(0, width - static_cast<int>(title.size()) - 2);
  os << std::string(static_cast<size_t>(pad / 2), '-') << " " << title << " "
     << std::string(static_cast<size_t>(pad - pad / 2), '-') << "\n";
}

void dist_lines(std::ostream& os, const char* name, const Distribution& d) {
  line(os, std::string("Mean ") + name + " (ms):", num(d.mean_ms));
  line(os, std::string("Median ") + name + " (ms):", num(d.median_ms));
  line(os, std::string("P90 ") + name + " (ms):", num(d.p90_ms));
  line(os, std::string("P99 ") + name + " (ms):", num(d.p99_ms));
}

json dist_json(const Distribution& d) {
  return {{"count", d.count},   {"mean_ms", d.mean_ms}, {"std_ms", d.std_ms}, {"median_ms", d.median_ms},
          {"p90_ms", d.p90_ms}, {"p99_ms", d.p99_ms},   {"min_ms", d.min_ms}, {"max_ms", d.max_ms}};
}

json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

std::string fmt_rate(double v) { return std::isinf(v) ? "inf" : num(v, v == std::floor(v) ? 0 : 2); }

double x_of(const BenchResult& r, SweepParam p) {
  return p == SweepParam::kMaxConcurrency ? static_cast<double>(r.config.max_concurrency) : r.config.request_rate;
}

}  // namespace

void print_report(const BenchResult& r, std::ostream& os) {
  const BenchMetrics& m = r.metrics;
  const BenchConfig& c = r.config;
  os << std::string(18, '=') << " Serving Benchmark Result " << std::string(18, '=') << "\n";
  line(os, "Model:", r.model);
  line(os, "Workload:", r.workload.dump());
  line(os, "Load:",
       (c.max_concurrency > 0 ? "max concurrency " + std::to_string(c.max_concurrency) + ", " : "") + "request rate " +
           fmt_rate(c.request_rate) + (c.burstiness != 1.0 ? " (burstiness " + num(c.burstiness) + ")" : ""));
  line(os, "Successful requests:", std::to_string(m.completed));
  line(os, "Failed requests:", std::to_string(m.failed));
  for (const auto& [kind, n] : m.failures) line(os, "  " + kind + ":", std::to_string(n));
  line(os, "Benchmark duration (s):", num(m.duration_s));
  line(os, "Total input tokens:", std::to_string(m.total_input_tokens));
  line(os, "Total generated tokens:", std::to_string(m.total_output_tokens));
  if (m.total_output_events != m.total_output_tokens)
    line(os, "Output SSE events (tokens merged):", std::to_string(m.total_output_events));
  line(os, "Request throughput (req/s):", num(m.request_throughput));
  line(os, "Output token throughput (tok/s):", num(m.output_throughput));
  line(os, "Total token throughput (tok/s):", num(m.total_token_throughput));
  if (m.goodput >= 0)
    line(os, "Request goodput (req/s):",
         num(m.goodput) + " (" + std::to_string(m.good_requests) + " requests met the SLOs)");
  line(os, "Peak requests in flight (client):", num(m.max_concurrency_seen, 0));
  section(os, "Time to First Token");
  dist_lines(os, "TTFT", m.ttft);
  section(os, "Time per Output Token (excl. 1st token)");
  dist_lines(os, "TPOT", m.tpot);
  section(os, "Inter-token Latency");
  dist_lines(os, "ITL", m.itl);
  section(os, "End-to-end Latency");
  dist_lines(os, "E2EL", m.e2el);
  const ServerSide& s = r.server;
  section(os, "Server /metrics");
  if (!s.available) {
    os << "not available (no /metrics on this server)\n";
  } else {
    line(os, "Prefix cache hit rate (tokens):",
         s.prefix_hit_rate ? num(100.0 * *s.prefix_hit_rate) + " %" : std::string("n/a (no lookups)"));
    if (s.kv_usage_peak) line(os, "Peak KV usage:", num(100.0 * *s.kv_usage_peak, 1) + " %");
    if (s.kv_slot_waste) line(os, "KV slots held but empty:", num(100.0 * *s.kv_slot_waste, 2) + " %");
    if (s.running_peak) line(os, "Peak running requests (server):", num(*s.running_peak, 0));
    if (s.generation_tokens) line(os, "Generated tokens (server counter):", num(*s.generation_tokens, 0));
    if (s.preemptions) line(os, "Preemptions:", num(*s.preemptions, 0));
  }
  os << std::string(62, '=') << "\n";
}

json result_json(const BenchResult& r, bool with_requests) {
  const BenchConfig& c = r.config;
  const BenchMetrics& m = r.metrics;
  json j;
  j["date"] = r.started_at;
  j["label"] = c.label;
  j["config"] = {{"url", c.url},
                 {"endpoint", c.endpoint},
                 {"model", r.model},
                 {"num_prompts", c.num_prompts},
                 {"duration_s", c.duration_s},
                 {"request_rate", std::isinf(c.request_rate) ? json("inf") : json(c.request_rate)},
                 {"burstiness", c.burstiness},
                 {"max_concurrency", c.max_concurrency},
                 {"ignore_eos", c.ignore_eos},
                 {"temperature", c.temperature},
                 {"extra_body", c.extra_body},
                 {"timeout_s", c.timeout_s},
                 {"slo", {{"ttft_ms", c.slo.ttft_ms}, {"tpot_ms", c.slo.tpot_ms}, {"e2el_ms", c.slo.e2el_ms}}}};
  j["workload"] = r.workload;
  j["metrics"] = {{"completed", m.completed},
                  {"failed", m.failed},
                  {"failures", m.failures},
                  {"duration_s", m.duration_s},
                  {"total_input_tokens", m.total_input_tokens},
                  {"total_output_tokens", m.total_output_tokens},
                  {"total_output_events", m.total_output_events},
                  {"total_cached_tokens", m.total_cached_tokens},
                  {"request_throughput", m.request_throughput},
                  {"output_throughput", m.output_throughput},
                  {"total_token_throughput", m.total_token_throughput},
                  {"goodput", m.goodput >= 0 ? json(m.goodput) : json(nullptr)},
                  {"good_requests", m.good_requests},
                  {"max_concurrency_seen", m.max_concurrency_seen},
                  {"ttft", dist_json(m.ttft)},
                  {"tpot", dist_json(m.tpot)},
                  {"itl", dist_json(m.itl)},
                  {"e2el", dist_json(m.e2el)}};
  const ServerSide& s = r.server;
  j["server_metrics"] = {{"available", s.available},
                         {"prefix_cache_hit_rate", opt(s.prefix_hit_rate)},
                         {"prefix_cache_query_tokens", opt(s.prefix_query_tokens)},
                         {"prefix_cache_hit_tokens", opt(s.prefix_hit_tokens)},
                         {"kv_usage_peak", opt(s.kv_usage_peak)},
                         {"kv_slot_waste", opt(s.kv_slot_waste)},
                         {"running_peak", opt(s.running_peak)},
                         {"generation_tokens", opt(s.generation_tokens)},
                         {"prompt_tokens", opt(s.prompt_tokens)},
                         {"preemptions", opt(s.preemptions)},
                         {"polls", s.polls}};
  if (with_requests) {
    json rows = json::array();
    for (const RequestRecord& q : r.records) {
      json row = {{"start_s", q.start_s},
                  {"ttft_s", q.ttft_s},
                  {"e2e_s", q.e2e_s},
                  {"prompt_tokens", q.prompt_tokens},
                  {"output_tokens", q.output_tokens},
                  {"output_events", q.output_events},
                  {"cached_tokens", q.cached_tokens},
                  {"ok", q.ok()}};
      if (!q.ok()) {
        row["failure"] = failure_kind_name(q.failure);
        if (q.http_status) row["http_status"] = q.http_status;
        row["error"] = q.error;
      }
      rows.push_back(std::move(row));
    }
    j["requests"] = std::move(rows);
  }
  return j;
}

Status write_json_file(const std::string& path, const json& j) {
  std::ofstream out(path);
  if (!out) return Status::not_found("cannot write '" + path + "'");
  out << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  if (!out) return Status::data_loss("writing '" + path + "' failed");
  return Status::ok();
}

void print_sweep_table(const std::vector<BenchResult>& points, SweepParam param, std::ostream& os) {
  os << std::right << std::setw(16) << sweep_param_name(param) << std::setw(8) << "ok" << std::setw(6) << "fail"
     << std::setw(9) << "req/s" << std::setw(10) << "out tok/s" << std::setw(10) << "TTFT p50" << std::setw(10)
     << "TTFT p99" << std::setw(9) << "ITL p50" << std::setw(9) << "ITL p99" << std::setw(10) << "TPOT p50"
     << std::setw(10) << "E2EL p50" << std::setw(8) << "KV pk%"
     << "\n";
  for (const BenchResult& r : points) {
    const BenchMetrics& m = r.metrics;
    os << std::setw(16) << fmt_rate(x_of(r, param)) << std::setw(8) << m.completed << std::setw(6) << m.failed
       << std::setw(9) << num(m.request_throughput) << std::setw(10) << num(m.output_throughput, 1) << std::setw(10)
       << num(m.ttft.median_ms, 1) << std::setw(10) << num(m.ttft.p99_ms, 1) << std::setw(9) << num(m.itl.median_ms, 1)
       << std::setw(9) << num(m.itl.p99_ms, 1) << std::setw(10) << num(m.tpot.median_ms, 1) << std::setw(10)
       << num(m.e2el.median_ms, 0) << std::setw(8)
       << (r.server.kv_usage_peak ? num(100 * *r.server.kv_usage_peak, 1) : std::string("-")) << "\n";
  }
  os << "(latencies in ms)\n";
}

Status write_sweep_plots(const std::vector<BenchResult>& points, SweepParam param, const std::string& prefix,
                         std::vector<std::string>* written) {
  const std::string dat = prefix + "_sweep.dat";
  {
    std::ofstream out(dat);
    if (!out) return Status::not_found("cannot write '" + dat + "'");
    out << "# " << sweep_param_name(param)
        << " out_tok_s req_s ttft_p50 ttft_p90 ttft_p99 itl_p50 itl_p90 itl_p99 tpot_p50 e2el_p50 (ms)\n";
    for (const BenchResult& r : points) {
      const double x = x_of(r, param);
      if (std::isinf(x)) continue;  // an unbounded rate has no place on the x axis
      const BenchMetrics& m = r.metrics;
      out << x << " " << m.output_throughput << " " << m.request_throughput << " " << m.ttft.median_ms << " "
          << m.ttft.p90_ms << " " << m.ttft.p99_ms << " " << m.itl.median_ms << " " << m.itl.p90_ms << " "
          << m.itl.p99_ms << " " << m.tpot.median_ms << " " << m.e2el.median_ms << "\n";
    }
  }
  written->push_back(dat);
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    return Status::unavailable("gnuplot is not installed, so no PNG plots were drawn (the numbers are in " + dat +
                               "); install it with: tools/packages.sh build (Debian package gnuplot-nox)");
  const std::string gp = prefix + "_plot.gp";
  const std::string xlabel = param == SweepParam::kMaxConcurrency ? "max concurrency" : "request rate (req/s)";
  const std::string title = points.empty() ? std::string() : points.front().model;
  {
    std::ofstream g(gp);
    if (!g) return Status::not_found("cannot write '" + gp + "'");
    g << "set terminal png size 900,600\n"
      << "set grid\nset key top left\nset logscale x 2\n"
      << "set xlabel '" << xlabel << "'\n"
      << "set output '" << prefix << "_throughput.png'\n"
      << "set title 'output throughput: " << title << "'\n"
      << "set ylabel 'output tokens/s'\nset yrange [0:*]\n"
      << "plot '" << dat << "' using 1:2 with linespoints lw 2 pt 7 title 'output tok/s'\n"
      << "set output '" << prefix << "_latency.png'\n"
      << "set title 'latency percentiles: " << title << "'\n"
      << "set ylabel 'ms'\nset logscale y 10\nset yrange [*:*]\n"
      << "plot '" << dat << "' using 1:4 with linespoints pt 7 title 'TTFT p50', "
      << "'' using 1:5 with linespoints pt 7 title 'TTFT p90', "
      << "'' using 1:6 with linespoints pt 7 title 'TTFT p99', "
      << "'' using 1:7 with linespoints pt 5 title 'ITL p50', "
      << "'' using 1:8 with linespoints pt 5 title 'ITL p90', "
      << "'' using 1:9 with linespoints pt 5 title 'ITL p99'\n";
  }
  written->push_back(gp);
  const std::string cmd = "gnuplot '" + gp + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) return Status::internal("gnuplot failed on " + gp);
  written->push_back(prefix + "_throughput.png");
  written->push_back(prefix + "_latency.png");
  return Status::ok();
}

}  // namespace pagoda::bench
