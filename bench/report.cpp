#include "bench/report.h"

#include <algorithm>
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

void dist_lines(std::ostream& os, const char* name, const Distribution& d, const std::string& median_range = "") {
  line(os, std::string("Mean ") + name + " (ms):", num(d.mean_ms));
  line(os, std::string("Median ") + name + " (ms):", num(d.median_ms) + median_range);
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

// " (min A, max B over N runs)" after a median, when there were repeats.
std::string range_text(const BenchResult& r, const RunRange& range, int decimals = 2) {
  if (r.runs <= 1) return "";
  return " (min " + num(range.min, decimals) + ", max " + num(range.max, decimals) + " over " + std::to_string(r.runs) +
         " runs)";
}

// An OpenAI-style error body's message ({"error": {"message": ...}}), else
// the text as it came.
std::string error_message_of(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
      j["error"]["message"].is_string())
    return j["error"]["message"].get<std::string>();
  return body;
}

std::string shorten(std::string s, size_t max) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

}  // namespace

std::string failure_hint(const std::string& key, const std::string& url) {
  if (key == "connection") return "is the server running at " + url + "? (start one: pagoda serve)";
  if (key == "http_401") return "the server wants an API key: pass --api-key KEY or set OPENAI_API_KEY";
  if (key == "http_404") return "check --endpoint and --model (GET /v1/models lists the served model)";
  if (key == "http_400") return "the server refused the request itself; its message says which field";
  if (key == "http_413") return "the request body is larger than the server accepts (server.max_body_bytes)";
  if (key == "http_429")
    return "the server was overloaded (its queue, scheduler.max_queue, or server.max_connections_per_client)";
  if (key == "http_503") return "the server was starting or draining";
  if (key == "timeout") return "a request took longer than --timeout";
  return "";
}

namespace {

// Whether the request bodies ask for JSON output: response_format
// json_object or json_schema, or vLLM's guided_json.
bool asks_for_json(const nlohmann::json& body) {
  if (!body.is_object()) return false;
  if (body.contains("guided_json")) return true;
  const auto f = body.find("response_format");
  if (f == body.end() || !f->is_object()) return false;
  const std::string type = f->value("type", "");
  return type == "json_object" || type == "json_schema";
}

// For requests that ask for JSON: how many successful outputs (choice 0)
// ended by "stop" and how many of those parse as JSON; the others ended by
// "length" (cut by max_tokens) or otherwise.
void json_output_lines(std::ostream& os, const BenchResult& r) {
  int64_t stopped = 0, parsed = 0, cut = 0, other = 0;
  for (const RequestRecord& q : r.records) {
    if (!q.ok()) continue;
    if (q.finish_reason == "length") {
      ++cut;
    } else if (q.finish_reason == "stop") {
      ++stopped;
      if (!nlohmann::json::parse(q.text, nullptr, false).is_discarded()) ++parsed;
    } else {
      ++other;
    }
  }
  line(os, "JSON outputs ended by stop:",
       std::to_string(parsed) + " of " + std::to_string(stopped) + " parse as JSON (" + std::to_string(cut) +
           " cut by max_tokens" + (other > 0 ? ", " + std::to_string(other) + " ended otherwise" : "") + ")");
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
  line(os, r.runs > 1 ? "Successful requests (all " + std::to_string(r.runs) + " runs):" : "Successful requests:",
       std::to_string(m.completed));
  line(os, r.runs > 1 ? "Failed requests (all " + std::to_string(r.runs) + " runs):" : "Failed requests:",
       std::to_string(m.failed));
  for (const auto& [kind, n] : m.failures) {
    line(os, "  " + kind + ":", std::to_string(n));
    if (auto e = m.first_errors.find(kind); e != m.first_errors.end() && !e->second.empty())
      line(os, "    first error:", shorten(error_message_of(e->second), 200));
    if (const std::string hint = failure_hint(kind, c.url); !hint.empty()) line(os, "    hint:", hint);
  }
  line(os, "Benchmark duration (s):", num(m.duration_s));
  line(os, "Total input tokens:", std::to_string(m.total_input_tokens));
  line(os, "Total generated tokens:", std::to_string(m.total_output_tokens));
  if (m.total_output_events != m.total_output_tokens)
    line(os, "Output SSE events (tokens merged):", std::to_string(m.total_output_events));
  line(os, "Request throughput (req/s):", num(m.request_throughput));
  line(os, "Output token throughput (tok/s):", num(m.output_throughput) + range_text(r, r.spread.output_throughput));
  line(os, "Total token throughput (tok/s):", num(m.total_token_throughput));
  if (m.goodput >= 0)
    line(os, "Request goodput (req/s):",
         num(m.goodput) + " (" + std::to_string(m.good_requests) + " requests met the SLOs)");
  line(os, "Peak requests in flight (client):", num(m.max_concurrency_seen, 0));
  if (asks_for_json(c.extra_body)) json_output_lines(os, r);
  section(os, "Time to First Token");
  dist_lines(os, "TTFT", m.ttft, range_text(r, r.spread.ttft_median_ms));
  section(os, "Time per Output Token (excl. 1st token)");
  dist_lines(os, "TPOT", m.tpot, range_text(r, r.spread.tpot_median_ms));
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
  j["runs"] = r.runs;
  if (r.runs > 1) {
    auto range = [](const RunRange& rr) { return json{{"min", rr.min}, {"max", rr.max}}; };
    j["spread"] = {{"output_throughput", range(r.spread.output_throughput)},
                   {"ttft_median_ms", range(r.spread.ttft_median_ms)},
                   {"tpot_median_ms", range(r.spread.tpot_median_ms)}};
  }
  // vLLM's benchmark_serving.py keys, flat at the top level, so its
  // readers and plotting scripts take pagoda's files as they are.
  j["duration"] = m.duration_s;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input_tokens;
  j["total_output_tokens"] = m.total_output_tokens;
  j["request_throughput"] = m.request_throughput;
  j["request_goodput"] = m.goodput >= 0 ? json(m.goodput) : json(nullptr);
  j["output_throughput"] = m.output_throughput;
  j["total_token_throughput"] = m.total_token_throughput;
  j["max_concurrency"] = c.max_concurrency > 0 ? json(c.max_concurrency) : json(nullptr);
  j["request_rate"] = std::isinf(c.request_rate) ? json("inf") : json(c.request_rate);
  for (const auto& [name, d] : {std::pair<const char*, const Distribution*>{"ttft", &m.ttft},
                                {"tpot", &m.tpot},
                                {"itl", &m.itl},
                                {"e2el", &m.e2el}}) {
    const std::string n = name;
    j["mean_" + n + "_ms"] = d->mean_ms;
    j["median_" + n + "_ms"] = d->median_ms;
    j["std_" + n + "_ms"] = d->std_ms;
    j["p90_" + n + "_ms"] = d->p90_ms;
    j["p99_" + n + "_ms"] = d->p99_ms;
  }
  j["metrics"] = {{"completed", m.completed},
                  {"failed", m.failed},
                  {"failures", m.failures},
                  {"first_errors", m.first_errors},
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

std::vector<std::string> sweep_output_files(const std::string& prefix) {
  return {prefix + "_sweep.dat", prefix + "_plot.gp", prefix + "_throughput.png", prefix + "_latency.png"};
}

Status write_sweep_plots(const std::vector<BenchResult>& points, SweepParam param, const std::string& prefix,
                         std::vector<std::string>* written) {
  const std::vector<std::string> files = sweep_output_files(prefix);
  const std::string& dat = files[0];
  // An unbounded request rate has no place on a numeric axis: it is drawn
  // one doubling right of the largest finite rate and labelled "inf".
  double largest = 0;
  for (const BenchResult& r : points)
    if (std::isfinite(x_of(r, param))) largest = std::max(largest, x_of(r, param));
  {
    std::ofstream out(dat);
    if (!out) return Status::not_found("cannot write '" + dat + "'");
    out << "# x label out_tok_s out_tok_s_min out_tok_s_max req_s ttft_p50 ttft_p50_min ttft_p50_max ttft_p90 "
           "ttft_p99 itl_p50 itl_p90 itl_p99 tpot_p50 e2el_p50 (ms; min/max over the runs of a point)\n";
    for (const BenchResult& r : points) {
      const double x = x_of(r, param);
      const BenchMetrics& m = r.metrics;
      const bool ranged = r.runs > 1;
      out << (std::isinf(x) ? (largest > 0 ? 2 * largest : 1) : x) << " " << fmt_rate(x) << " " << m.output_throughput
          << " " << (ranged ? r.spread.output_throughput.min : m.output_throughput) << " "
          << (ranged ? r.spread.output_throughput.max : m.output_throughput) << " " << m.request_throughput << " "
          << m.ttft.median_ms << " " << (ranged ? r.spread.ttft_median_ms.min : m.ttft.median_ms) << " "
          << (ranged ? r.spread.ttft_median_ms.max : m.ttft.median_ms) << " " << m.ttft.p90_ms << " " << m.ttft.p99_ms
          << " " << m.itl.median_ms << " " << m.itl.p90_ms << " " << m.itl.p99_ms << " " << m.tpot.median_ms << " "
          << m.e2el.median_ms << "\n";
    }
  }
  written->push_back(dat);
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    return Status::unavailable("gnuplot is not installed, so no PNG plots were drawn (the numbers are in " + dat +
                               "); install it with: tools/packages.sh build (Debian package gnuplot-nox)");
  const std::string& gp = files[1];
  const std::string xlabel = param == SweepParam::kMaxConcurrency ? "max concurrency" : "request rate (req/s)";
  const std::string title = points.empty() ? std::string() : points.front().model;
  const bool repeated = !points.empty() && points.front().runs > 1;
  const std::string bars = repeated ? " (bars: min-max of " + std::to_string(points.front().runs) + " runs)" : "";
  {
    std::ofstream g(gp);
    if (!g) return Status::not_found("cannot write '" + gp + "'");
    g << "set terminal png size 900,600\n"
      << "set grid\nset key top left\nset logscale x 2\n"
      << "set xlabel '" << xlabel << "'\n"
      << "set output '" << files[2] << "'\n"
      << "set title 'output throughput: " << title << bars << "'\n"
      << "set ylabel 'output tokens/s'\nset yrange [0:*]\n"
      << "plot '" << dat << "' using 1:3:4:5:xtic(2) with yerrorlines lw 2 pt 7 title 'output tok/s'\n"
      << "set output '" << files[3] << "'\n"
      << "set title 'latency percentiles: " << title << bars << "'\n"
      << "set ylabel 'ms'\nset logscale y 10\nset yrange [*:*]\n"
      << "plot '" << dat << "' using 1:7:8:9:xtic(2) with yerrorlines pt 7 title 'TTFT p50', "
      << "'' using 1:10 with linespoints pt 7 title 'TTFT p90', "
      << "'' using 1:11 with linespoints pt 7 title 'TTFT p99', "
      << "'' using 1:12 with linespoints pt 5 title 'ITL p50', "
      << "'' using 1:13 with linespoints pt 5 title 'ITL p90', "
      << "'' using 1:14 with linespoints pt 5 title 'ITL p99'\n";
  }
  written->push_back(gp);
  const std::string cmd = "gnuplot '" + gp + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) return Status::internal("gnuplot failed on " + gp);
  written->push_back(files[2]);
  written->push_back(files[3]);
  return Status::ok();
}

}  // namespace pagoda::bench
