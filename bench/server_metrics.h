// Reading a server's Prometheus /metrics text: samples by name, and the
// pagoda gauges and counters the load generator reports (prefix-cache hit
// rate, KV usage, generated tokens). Plain values; thread-compatible.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace pagoda::bench {

// Sample lines "name{labels} value" -> value, keyed by "name{labels}" as
// written (no labels: just the name). Comments and malformed lines are skipped.
std::map<std::string, double> parse_prometheus(const std::string& text);

// One sample, if present.
std::optional<double> sample(const std::map<std::string, double>& m, const std::string& key);

// The difference of one counter between two scrapes, if present in both.
std::optional<double> delta(const std::map<std::string, double>& before, const std::map<std::string, double>& after,
                            const std::string& key);

}  // namespace pagoda::bench
