// `pagoda bench serve --url URL ...`: the load generator. Sends a workload to
// any OpenAI-compatible server (streaming), prints a table, writes a JSON
// result and, for sweeps, a table and PNG plots. See bench/bench_serve.h.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include "bench/bench_serve.h"
#include "bench/repeat.h"
#include "bench/report.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

struct BenchFlags {
  bench::BenchConfig cfg;
  std::string workload = "random";
  std::string dataset_file;
  std::string prompt_form = "ids";
  std::string input_len = "128", output_len = "128";
  std::string first_input_len;  // conversation: "" = --input-len
  std::string request_rate = "inf";
  std::string extra_body;
  std::vector<std::string> goodput;
  std::string result_file;
  bool save_requests = false;
  std::string sweep;
  std::string plot_prefix;
  bool no_progress = false;
  bool overwrite = false;       // sweep plots may replace earlier files
  bool seed_given = false;      // --seed was given; else the seed is drawn
  double max_failed_ratio = 0;  // exit 1 when more of the requests failed
  int repeat = 1;               // passes over every point; medians reported
  int64_t warmup_requests = 0;  // sent first, not recorded
};

Status parse_goodput(const std::vector<std::string>& items, bench::Slo* slo) {
  for (const std::string& raw : items) {
    std::stringstream in(raw);
    std::string item;
    while (std::getline(in, item, ',')) {
      if (item.empty()) continue;
      const size_t colon = item.find(':');
      const std::string key = item.substr(0, colon);
      char* end = nullptr;
      const double v = colon == std::string::npos ? 0 : std::strtod(item.c_str() + colon + 1, &end);
      if (colon == std::string::npos || *end != '\0' || !(v > 0))
        return Status::invalid_argument("--goodput takes KEY:MS items (ttft, tpot, e2el), got '" + item + "'");
      if (key == "ttft") slo->ttft_ms = v;
      else if (key == "tpot") slo->tpot_ms = v;
      else if (key == "e2el") slo->e2el_ms = v;
      else return Status::invalid_argument("--goodput: unknown SLO '" + key + "' (use ttft, tpot or e2el)");
    }
  }
  return Status::ok();
}

// Fills the config from the raw flags; the message names the bad flag.
Status finish_config(BenchFlags& f) {
  bench::BenchConfig& c = f.cfg;
  if (!f.dataset_file.empty()) f.workload = "file";
  if (f.workload == "random") c.workload.kind = bench::WorkloadKind::kRandom;
  else if (f.workload == "shared-prefix") c.workload.kind = bench::WorkloadKind::kSharedPrefix;
  else if (f.workload == "conversation") c.workload.kind = bench::WorkloadKind::kConversation;
  else if (f.workload == "file") c.workload.kind = bench::WorkloadKind::kFile;
  if (c.workload.kind == bench::WorkloadKind::kFile && f.dataset_file.empty())
    return Status::invalid_argument("--workload file needs --dataset-file FILE");
  c.workload.file = f.dataset_file;
  c.workload.form = f.prompt_form == "words" ? bench::PromptForm::kWords : bench::PromptForm::kTokenIds;
  auto in = bench::parse_length_range(f.input_len, "--input-len");
  if (!in) return in.status();
  auto out = bench::parse_length_range(f.output_len, "--output-len");
  if (!out) return out.status();
  c.workload.input_len = *in;
  if (!f.first_input_len.empty()) {
    auto first = bench::parse_length_range(f.first_input_len, "--first-input-len");
    if (!first) return first.status();
    c.workload.first_input_len = *first;
  }
  c.workload.output_len = *out;
  if (f.request_rate == "inf") {
    c.request_rate = std::numeric_limits<double>::infinity();
  } else {
    char* end = nullptr;
    c.request_rate = std::strtod(f.request_rate.c_str(), &end);
    if (*end != '\0' || !(c.request_rate > 0))
      return Status::invalid_argument("--request-rate must be a number > 0 or 'inf', got '" + f.request_rate + "'");
  }
  if (!f.extra_body.empty()) {
    c.extra_body = nlohmann::json::parse(f.extra_body, nullptr, false);
    if (c.extra_body.is_discarded() || !c.extra_body.is_object())
      return Status::invalid_argument("--extra-body must be a JSON object");
  }
  PAGODA_RETURN_IF_ERROR(parse_goodput(f.goodput, &c.slo));
  if (c.num_prompts < 0) return Status::invalid_argument("--num-prompts must be >= 0");
  if (c.duration_s < 0) return Status::invalid_argument("--duration must be >= 0");
  if (c.max_concurrency < 0) return Status::invalid_argument("--max-concurrency must be >= 0");
  if (!(c.timeout_s > 0)) return Status::invalid_argument("--timeout must be > 0");
  if (!(f.max_failed_ratio >= 0 && f.max_failed_ratio <= 1))
    return Status::invalid_argument("--max-failed-ratio must be from 0 to 1");
  // Turn t+1 of a conversation is request i + N: it is sent after turn t
  // ended only while fewer than N requests are in flight.
  if (c.workload.kind == bench::WorkloadKind::kConversation &&
      (c.max_concurrency == 0 || c.max_concurrency >= c.workload.num_conversations))
    return Status::invalid_argument("--workload conversation needs --max-concurrency below --num-conversations (" +
                                    std::to_string(c.workload.num_conversations) +
                                    "), so that each turn is sent after the previous turn of its conversation ended");
  using Progress = bench::BenchConfig::Progress;
  c.progress = f.no_progress ? Progress::kOff : ::isatty(STDOUT_FILENO) ? Progress::kTerminal : Progress::kLines;
  // Fresh prompts unless a seed is asked for: the same prompts as an earlier
  // run would be served from the server's prefix cache.
  if (!f.seed_given) c.workload.seed = static_cast<uint64_t>(std::random_device{}()) % 1000000;
  if (c.api_key.empty())
    if (const char* key = std::getenv("OPENAI_API_KEY"); key != nullptr) c.api_key = key;
  return Status::ok();
}

// One pass: every point of the sweep in order, or the single run.
Result<std::vector<bench::BenchResult>> run_pass(const bench::BenchConfig& cfg,
                                                 const std::optional<bench::Sweep>& sweep) {
  if (sweep) return bench::run_sweep(cfg, *sweep);
  auto r = bench::run_bench(cfg);
  if (!r) return r.status();
  return std::vector<bench::BenchResult>{std::move(*r)};
}

// Requests sent before the measured passes (JIT, caches, page faults), at
// the highest concurrency of the run.
Status warm_up(const BenchFlags& f, const std::optional<bench::Sweep>& sweep) {
  bench::BenchConfig w = f.cfg;
  w.num_prompts = f.warmup_requests;
  // Prompts of their own: the measured passes must not hit the prefix cache
  // on prompts the warm-up sent.
  w.workload.seed = f.cfg.workload.seed + 1000003;
  w.duration_s = 0;
  w.progress = bench::BenchConfig::Progress::kOff;
  w.metrics_interval_s = 0;
  if (sweep && sweep->param == bench::SweepParam::kMaxConcurrency)
    w.max_concurrency = static_cast<int64_t>(*std::max_element(sweep->values.begin(), sweep->values.end()));
  auto r = bench::run_bench(w);
  if (!r) return Status(r.status().code(), "warm-up: " + r.status().message()).with_field(r.status().field());
  std::cout << "warm-up: " << r->metrics.completed << " requests (not recorded)\n";
  return Status::ok();
}

// A run's error, with the hint for its failure class (field()) if there is one.
std::string with_hint(const Status& st, const std::string& url) {
  const std::string hint = bench::failure_hint(st.field(), url);
  return hint.empty() ? st.message() : st.message() + "; " + hint;
}

std::string plot_prefix(const BenchFlags& f) {
  return !f.plot_prefix.empty()   ? f.plot_prefix
         : !f.result_file.empty() ? f.result_file.substr(0, f.result_file.rfind('.'))
                                  : std::string("bench");
}

// Random prompts share nothing, so a high prefix-cache hit rate means the
// server had seen them before: an earlier run with the same --seed.
void warn_of_cached_prompts(const BenchFlags& f, const std::vector<bench::BenchResult>& points) {
  if (f.cfg.workload.kind != bench::WorkloadKind::kRandom) return;
  for (const bench::BenchResult& p : points) {
    const auto& rate = p.server.prefix_hit_rate;
    if (rate && *rate > 0.2) {
      std::cerr << "pagoda bench: warning: the server's prefix cache served " << static_cast<int>(100 * *rate)
                << "% of the prompt tokens of random prompts: they were sent before (same --seed as an earlier "
                   "run?), so prefill was skipped and TTFT is flattered; use another --seed or restart the server\n";
      return;
    }
  }
}

// 0 when every request succeeded, or the failed share is within
// --max-failed-ratio; else 1, saying so.
int failure_exit_code(const BenchFlags& f, const std::vector<std::vector<bench::BenchResult>>& passes) {
  int64_t failed = 0, total = 0;
  for (const auto& pass : passes)
    for (const bench::BenchResult& r : pass) {
      failed += r.metrics.failed;
      total += r.metrics.failed + r.metrics.completed;
    }
  if (total == 0) {
    print_error("no request was sent");
    return kExitFailure;
  }
  const double ratio = static_cast<double>(failed) / static_cast<double>(total);
  if (failed == 0 || ratio <= f.max_failed_ratio) return kExitOk;
  print_error(std::to_string(failed) + " of " + std::to_string(total) + " requests failed (" +
              std::to_string(static_cast<int>(std::round(100 * ratio))) + "%, --max-failed-ratio " +
              std::to_string(f.max_failed_ratio).substr(0, 4) +
              "); the report above shows the first error of each kind");
  return kExitFailure;
}

int run(BenchFlags& f) {
  if (Status st = finish_config(f); !st) {
    print_error(st.message());
    return kExitConfigError;
  }
  std::optional<bench::Sweep> sweep;
  if (!f.sweep.empty()) {
    auto parsed = bench::parse_sweep(f.sweep);
    if (!parsed) {
      print_error(parsed.status().message());
      return kExitConfigError;
    }
    sweep = std::move(*parsed);
  }
  if (sweep) {
    // Checked before the run: an hour of benchmark must not end by silently
    // replacing the plots of another.
    for (const std::string& file : bench::sweep_output_files(plot_prefix(f))) {
      std::error_code ec;
      if (!f.overwrite && std::filesystem::exists(file, ec)) {
        print_error("'" + file + "' exists (an earlier sweep?): pass --overwrite, or another --plot-prefix");
        return kExitConfigError;
      }
    }
  }
  std::cout << "workload seed " << f.cfg.workload.seed << (f.seed_given ? "" : " (drawn; --seed repeats a run)")
            << "\n";
  if (f.warmup_requests > 0) {
    if (Status st = warm_up(f, sweep); !st) {
      print_error(with_hint(st, f.cfg.url));
      return kExitFailure;
    }
  }
  // Passes run one after another, so the repeats of one point are spread
  // over the whole run rather than back to back.
  std::vector<std::vector<bench::BenchResult>> passes;
  for (int k = 0; k < f.repeat; ++k) {
    // Each pass draws its own prompts (seed + k; sweep points add 100 i):
    // a repeat of the same prompts would be served from the prefix cache.
    bench::BenchConfig pass_cfg = f.cfg;
    pass_cfg.workload.seed = f.cfg.workload.seed + static_cast<uint64_t>(k);
    auto pass = run_pass(pass_cfg, sweep);
    if (!pass) {
      print_error(with_hint(pass.status(), f.cfg.url));
      return kExitFailure;
    }
    passes.push_back(std::move(*pass));
  }
  std::vector<bench::BenchResult> points;  // one per point: the run, or the median of the runs
  std::vector<nlohmann::json> spreads;
  for (size_t i = 0; i < passes.front().size(); ++i) {
    std::vector<bench::BenchResult> runs;
    for (const auto& pass : passes) runs.push_back(pass[i]);
    points.push_back(f.repeat > 1 ? bench::median_result(runs) : runs.front());
    spreads.push_back(bench::run_spread_json(runs));
  }
  if (f.repeat > 1) std::cout << "(every figure below is the median of " << f.repeat << " runs)\n";
  for (const auto& p : points) bench::print_report(p, std::cout);
  if (sweep) bench::print_sweep_table(points, sweep->param, std::cout);
  if (!f.result_file.empty()) {
    auto point_json = [&](size_t i) {
      nlohmann::json j = bench::result_json(points[i], f.save_requests);
      if (f.repeat > 1) j["repeats"] = spreads[i];
      return j;
    };
    nlohmann::json j;
    if (sweep) {
      j = {{"sweep", bench::sweep_param_name(sweep->param)}, {"points", nlohmann::json::array()}};
      for (size_t i = 0; i < points.size(); ++i) j["points"].push_back(point_json(i));
    } else {
      j = point_json(0);
    }
    if (Status st = bench::write_json_file(f.result_file, j); !st) {
      print_error(st.message());
      return kExitFailure;
    }
    std::cout << "wrote " << f.result_file << "\n";
  }
  warn_of_cached_prompts(f, points);
  if (sweep) {
    std::vector<std::string> written;
    Status st = bench::write_sweep_plots(points, sweep->param, plot_prefix(f), &written);
    for (const auto& w : written) std::cout << "wrote " << w << "\n";
    if (!st) std::cerr << "pagoda bench: " << st.message() << "\n";
  }
  return failure_exit_code(f, passes);
}

}  // namespace

void register_bench(CLI::App& app, int* exit_code) {
  auto* bench_cmd = app.add_subcommand("bench", "Benchmarks");
  bench_cmd->require_subcommand(1);
  auto* cmd = bench_cmd->add_subcommand(
      "serve", "Load-test an OpenAI-compatible server (streaming): TTFT, TPOT, ITL, E2EL, throughput, goodput");
  auto f = std::make_shared<BenchFlags>();
  bench::BenchConfig& c = f->cfg;
  cmd->add_option("--url", c.url, "Server base URL (http only)")->capture_default_str();
  cmd->add_option("--endpoint", c.endpoint, "API path")
      ->check(CLI::IsMember({"/v1/completions", "/v1/chat/completions"}))
      ->capture_default_str();
  cmd->add_option("--model", c.model, "Model name to request (default: the first of GET /v1/models)");
  cmd->add_option("--api-key", c.api_key, "Sent as 'Authorization: Bearer KEY' (default: $OPENAI_API_KEY)");
  cmd->add_option("--workload", f->workload, "random | shared-prefix | conversation | file")
      ->check(CLI::IsMember({"random", "shared-prefix", "conversation", "file"}))
      ->capture_default_str();
  cmd->add_option(
      "--dataset-file", f->dataset_file,
      "JSONL prompts: {\"prompt\": \"text\" or [ids], \"max_tokens\": N (optional)} (implies --workload file)");
  cmd->add_option("--input-len", f->input_len,
                  "Prompt tokens (random), suffix tokens (shared-prefix) or tokens per turn (conversation): N or LO:HI")
      ->capture_default_str();
  cmd->add_option("--output-len", f->output_len, "max_tokens: N or LO:HI")->capture_default_str();
  cmd->add_option("--prefix-len", c.workload.prefix_len,
                  "shared-prefix: tokens in each group's shared prefix; conversation: system prompt tokens (0: none)");
  cmd->add_option("--num-groups", c.workload.num_groups,
                  "shared-prefix: number of distinct prefixes; conversation: distinct system prompts")
      ->capture_default_str();
  cmd->add_option("--num-conversations", c.workload.num_conversations,
                  "conversation: conversations open at once (request i is a turn of conversation i mod this)")
      ->capture_default_str();
  cmd->add_option("--turns", c.workload.turns,
                  "conversation: turns per conversation; each extends the previous prompt by its answer and a question")
      ->capture_default_str();
  cmd->add_option("--first-input-len", f->first_input_len,
                  "conversation: tokens of each conversation's first user turn (a document), N or LO:HI "
                  "(default: --input-len)");
  cmd->add_option("--session-header", c.session_header,
                  "conversation: send each conversation's id in this header (e.g. X-Session-Id, for a balancer's "
                  "affinity)");
  cmd->add_option("--prompt-form", f->prompt_form,
                  "ids: random token ids (exact input lengths); words: random English words")
      ->check(CLI::IsMember({"ids", "words"}))
      ->capture_default_str();
  cmd->add_option("--vocab-size", c.workload.vocab_size,
                  "Token ids are drawn below this (default: learned from POST /detokenize)");
  cmd->add_option("--seed", c.workload.seed,
                  "Workload and arrival seed (default: drawn per run, so prompts are fresh; printed)")
      ->each([f](const std::string&) { f->seed_given = true; });
  cmd->add_option("--num-prompts", c.num_prompts, "Requests to send (0: until --duration)");
  cmd->add_option("--duration", c.duration_s, "Stop sending after this many seconds (in-flight requests finish)");
  cmd->add_option("--request-rate", f->request_rate, "Open-loop arrivals per second, or inf")->capture_default_str();
  cmd->add_option("--burstiness", c.burstiness, "Gamma shape of the arrival gaps: 1 = Poisson, <1 burstier")
      ->capture_default_str();
  cmd->add_option("--max-concurrency", c.max_concurrency, "Requests in flight at most (closed loop); 0 = no limit");
  cmd->add_flag("--ignore-eos", c.ignore_eos, "Ask the server to ignore EOS (exact output lengths)");
  cmd->add_option("--temperature", c.temperature, "Sampling temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--extra-body", f->extra_body, "JSON object merged into every request body");
  cmd->add_option("--goodput", f->goodput, "SLOs for goodput, e.g. --goodput ttft:500 tpot:50 (ms)")->expected(1, 3);
  cmd->add_option("--timeout", c.timeout_s, "Seconds allowed per request")->capture_default_str();
  cmd->add_option("--metrics-interval", c.metrics_interval_s, "Seconds between /metrics polls (0: no polling)")
      ->capture_default_str();
  cmd->add_option("--result-file", f->result_file, "Write the result (config, workload, every figure) as JSON");
  cmd->add_flag("--save-requests", f->save_requests, "Add one row per request to the result file");
  cmd->add_option("--label", c.label, "Free text stored in the result file");
  cmd->add_option("--sweep", f->sweep, "Run several points: max-concurrency=1,4,16,64 or request-rate=1,2,inf");
  cmd->add_option("--plot-prefix", f->plot_prefix,
                  "Sweep plots go to PREFIX_throughput.png and PREFIX_latency.png (default: the result file's stem)");
  cmd->add_option("--repeat", f->repeat,
                  "Run every point N times (whole passes, interleaved) and report the median of each figure")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--warmup-requests", f->warmup_requests,
                  "Send N requests first (at the highest concurrency), not recorded")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  cmd->add_flag("--no-progress", f->no_progress,
                "No progress (default: a live line on a terminal, else a line with percentage and ETA every 5 s)");
  cmd->add_flag("--overwrite", f->overwrite, "A sweep may replace the plot files of an earlier one");
  cmd->add_option("--max-failed-ratio", f->max_failed_ratio,
                  "Exit 0 only if at most this share of requests failed (default 0: any failure exits 1)");
  cmd->callback([f, exit_code] { *exit_code = run(*f); });
}

}  // namespace pagoda::cli
