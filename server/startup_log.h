// The start-up summary `pagoda serve` logs at info: one line each for the
// model, the KV cache and the engine (text format), or records of named
// fields (json format); the full effective config at debug. Free functions;
// thread-safe (they only log).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "config/server_config.h"
#include "engine/model/model_config.h"
#include "server/kv_sizing.h"

namespace pagoda {

void log_model_summary(const std::string& served_name, const ServerConfig& config, const ModelConfig& model,
                       size_t packed_weight_bytes, int64_t max_model_len);

void log_kv_summary(const ServerConfig& config, const ServerKvPlan& kv, size_t reserved_bytes, size_t resident_bytes);

void log_engine_summary(const ServerConfig& config, int compute_threads);

// At debug: every key of the effective config (YAML in text format, an
// object in json format).
void log_effective_config(const ServerConfig& config);

// "260K", "201M", "1.1B".
std::string count_text(int64_t n);

}  // namespace pagoda
