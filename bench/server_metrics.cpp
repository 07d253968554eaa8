#include "bench/server_metrics.h"

#include <cstdlib>
#include <sstream>

namespace pagoda::bench {

std::map<std::string, double> parse_prometheus(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    // The value follows the last space outside the label braces.
    const size_t close = line.rfind('}');
    const size_t sp = line.find(' ', close == std::string::npos ? 0 : close);
    if (sp == std::string::npos || sp == 0) continue;
    const std::string value = line.substr(sp + 1);
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (end == value.c_str()) continue;
    out[line.substr(0, sp)] = v;
  }
  return out;
}

std::optional<double> sample(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::optional<double> delta(const std::map<std::string, double>& before, const std::map<std::string, double>& after,
                            const std::string& key) {
  auto a = sample(before, key), b = sample(after, key);
  if (!a || !b) return std::nullopt;
  return *b - *a;
}

}  // namespace pagoda::bench
