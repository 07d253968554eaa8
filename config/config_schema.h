// The config schema: one ConfigField per YAML key, with its type check,
// allowed values and a reader for printing. This table is the single place a
// knob is registered; the loader, `pagoda config check` and the tests all
// walk it. Built once, immutable afterwards: safe to read from any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"
#include "config/server_config.h"

namespace pagoda {

struct ConfigField {
  std::string path;     // "section.key", e.g. "kv.page_size"
  std::string allowed;  // what is allowed, for error messages ("one of 8, 16, ...")
  // Checks type and range of `node` and stores it in `cfg`. The error message
  // names the key, the value given and what is allowed.
  std::function<Status(const YAML::Node& node, ServerConfig& cfg)> assign;
  // The field's current value as a YAML node (for printing the effective config).
  std::function<YAML::Node(const ServerConfig& cfg)> read;
  bool secret = false;   // printed masked (API keys)
  bool is_path = false;  // a relative value in a config file is relative to the file's folder
};

// Every field, in the order of config/default.yaml.
const std::vector<ConfigField>& config_fields();

// The field with this exact path, or nullptr.
const ConfigField* find_config_field(std::string_view path);

// " (did you mean 'kv.page_size'?)" for a near miss of a known key, else "".
std::string did_you_mean(std::string_view unknown_path);

}  // namespace pagoda
