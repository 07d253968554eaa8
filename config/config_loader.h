// Loading ServerConfig: defaults, then a YAML file, then overrides (the
// environment's, then the command line's), each beating the one before; then
// validation of every value and of combinations. Errors name the key path,
// the value given and what is allowed. Free functions, no shared state:
// thread-safe.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "config/server_config.h"

namespace pagoda {

// A loaded config plus which keys the user set explicitly (file or override).
struct LoadedConfig {
  ServerConfig config;
  std::set<std::string> explicit_keys;
  // For the start-up log: settings a later layer replaced ("kv.num_pages=N
  // (override ...) replaces kv.memory_gib").
  std::vector<std::string> notes;
};

// Parses YAML text (may be empty) and applies `overrides` ("kv.page_size=32";
// the value is parsed as YAML, so "[a, b]" is a list). Checks types, ranges,
// unknown keys and contradictions; does not touch the file system.
// `source` names the text in messages (a file name or "<string>").
// Relative paths in the text (model.path, model.tokenizer,
// server.api_key_file) are resolved against `relative_to` when it is not
// empty (load_config passes the file's folder); overrides stay as given,
// relative to the working directory.
Result<LoadedConfig> parse_config(std::string_view yaml_text, const std::vector<std::string>& overrides,
                                  const std::string& source = "<string>", const std::string& relative_to = "");

// One "section.key=value" override checked on its own: the key exists and
// the value has its type and range (no cross-field checks). For naming the
// command-line flag that carried a bad value.
Status check_override(const std::string& override_text);

// Reads `file` ("" = no file: defaults only) then does what parse_config does.
Result<LoadedConfig> load_config(const std::string& file, const std::vector<std::string>& overrides);

// Cross-field checks (also run by parse_config).
Status validate_config(const ServerConfig& cfg, const std::set<std::string>& explicit_keys);

// Checks the paths the config names exist and are readable (model, tokenizer,
// api_key_file); errors name the key.
Status check_config_paths(const ServerConfig& cfg);

// The effective config as YAML, every key, API keys masked.
std::string config_to_yaml(const ServerConfig& cfg);

// The same as a JSON object of sections (for json-format logs).
nlohmann::ordered_json config_to_json(const ServerConfig& cfg);

}  // namespace pagoda
