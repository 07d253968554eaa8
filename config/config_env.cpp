#include "config/config_env.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "config/config_schema.h"

extern char** environ;

namespace pagoda {

Result<std::vector<std::string>> config_overrides_from_environment(const std::vector<std::string>& environment) {
  std::set<std::string> sections;
  for (const ConfigField& f : config_fields()) sections.insert(f.path.substr(0, f.path.find('.')));
  const std::string prefix = "PAGODA_";
  std::vector<std::pair<std::string, std::string>> found;  // (variable, override)
  for (const std::string& entry : environment) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || entry.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string name = entry.substr(0, eq);
    std::string rest = name.substr(prefix.size());
    std::transform(rest.begin(), rest.end(), rest.begin(), [](unsigned char c) { return std::tolower(c); });
    const size_t sep = rest.find('_');
    if (sep == std::string::npos || sections.count(rest.substr(0, sep)) == 0) continue;  // not a config variable
    const std::string path = rest.substr(0, sep) + "." + rest.substr(sep + 1);
    if (find_config_field(path) == nullptr) {
      return Status::invalid_argument("environment variable '" + name + "' names no config key ('" + path +
                                      "' does not exist; see docs/configuration.md)");
    }
    found.emplace_back(name, path + "=" + entry.substr(eq + 1));
  }
  std::sort(found.begin(), found.end());
  // Two ways to size the KV pool in one place contradict (as in one file).
  auto given = [&](const std::string& key) {
    return std::any_of(found.begin(), found.end(), [&](const auto& f) { return f.second.rfind(key + "=", 0) == 0; });
  };
  if (given("kv.memory_gib") && given("kv.num_pages"))
    return Status::invalid_argument(
        "environment variables 'PAGODA_KV_MEMORY_GIB' and 'PAGODA_KV_NUM_PAGES' contradict each other: give one");
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::vector<std::string> process_environment() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) out.emplace_back(*e);
  return out;
}

}  // namespace pagoda
