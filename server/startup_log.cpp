#include "server/startup_log.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "config/config_loader.h"
#include "kvpool/kv_dtype.h"

namespace pagoda {

std::string count_text(int64_t n) {
  if (n < 1000) return std::to_string(n);
  const double v = static_cast<double>(n);
  if (n < 1000000) return fmt::format("{:.0f}K", v / 1e3);
  if (n < 1000000000) return fmt::format("{:.0f}M", v / 1e6);
  return fmt::format("{:.1f}B", v / 1e9);
}

void log_model_summary(const std::string& served_name, const ServerConfig& c, const ModelConfig& mc,
                       size_t packed_weight_bytes, int64_t max_model_len) {
  const std::string text = fmt::format(
      "model '{}' from {}: {} parameters ({} layers, dim {}, {} heads / {} KV heads, vocabulary {}), weights {} "
      "({:.1f} MB packed), max_model_len {}",
      served_name, c.model.path, count_text(mc.num_parameters()), mc.n_layers, mc.dim, mc.n_heads, mc.n_kv_heads,
      mc.vocab_size, c.model.weight_dtype, static_cast<double>(packed_weight_bytes) / 1e6, max_model_len);
  log_summary(spdlog::level::info, "model", text,
              {{"name", served_name},
               {"path", c.model.path},
               {"parameters", mc.num_parameters()},
               {"layers", mc.n_layers},
               {"dim", mc.dim},
               {"heads", mc.n_heads},
               {"kv_heads", mc.n_kv_heads},
               {"vocab_size", mc.vocab_size},
               {"weight_dtype", c.model.weight_dtype},
               {"packed_weight_bytes", packed_weight_bytes},
               {"max_model_len", max_model_len}});
  spdlog::debug("model shape: {}", mc.summary());
}

void log_kv_summary(const ServerConfig& c, const ServerKvPlan& kv, size_t reserved_bytes, size_t resident_bytes) {
  const KvPlan& p = kv.plan;
  const std::string text = fmt::format(
      "KV cache: {}, {}-token pages, {} pages = {} tokens in flight ({} sequences of max_model_len {} at once), "
      "prefix caching {}; {:.1f} MiB reserved, taken from memory as pages are written (resident now {:.1f} MiB)",
      kv_dtype_name(p.layout.dtype), p.layout.page_size, p.usable_pages, p.max_tokens_in_flight,
      kv.sequences_at_max_len, kv.max_model_len, c.kv.prefix_caching ? "on" : "off",
      static_cast<double>(reserved_bytes) / 1048576.0, static_cast<double>(resident_bytes) / 1048576.0);
  log_summary(spdlog::level::info, "kv_cache", text,
              {{"dtype", kv_dtype_name(p.layout.dtype)},
               {"page_size", p.layout.page_size},
               {"pages", p.usable_pages},
               {"tokens_in_flight", p.max_tokens_in_flight},
               {"sequences_at_max_model_len", kv.sequences_at_max_len},
               {"bytes_per_token", p.bytes_per_token},
               {"prefix_caching", c.kv.prefix_caching},
               {"reserved_bytes", reserved_bytes},
               {"resident_bytes", resident_bytes}});
}

void log_engine_summary(const ServerConfig& c, int compute_threads) {
  const auto& s = c.scheduler;
  const std::string text = fmt::format(
      "engine: {} compute threads; steps of up to {} sequences and {} tokens{}; {} policy, queue of {}{}; {} I/O "
      "threads",
      compute_threads, s.max_num_seqs, s.max_num_batched_tokens, s.chunked_prefill ? ", chunked prefill" : "", s.policy,
      s.max_queue, s.queue_timeout_s > 0 ? fmt::format(" (timeout {} s)", s.queue_timeout_s) : std::string(),
      c.server.io_threads);
  log_summary(spdlog::level::info, "engine", text,
              {{"compute_threads", compute_threads},
               {"max_num_seqs", s.max_num_seqs},
               {"max_num_batched_tokens", s.max_num_batched_tokens},
               {"chunked_prefill", s.chunked_prefill},
               {"policy", s.policy},
               {"max_queue", s.max_queue},
               {"queue_timeout_s", s.queue_timeout_s},
               {"io_threads", c.server.io_threads}});
}

void log_effective_config(const ServerConfig& c) {
  if (!spdlog::should_log(spdlog::level::debug)) return;  // both renderings walk every key
  log_summary(spdlog::level::debug, "effective_config", "effective config:\n" + config_to_yaml(c),
              {{"config", config_to_json(c)}});
}

}  // namespace pagoda
