// Pieces shared by the `pagoda` subcommands: the config flags every
// config-taking subcommand accepts (--config, --set and flags that each set
// one key, as vLLM's and llama.cpp's flags do), and the exit codes.
// Plain data filled by CLI11 during parsing; not synchronized.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "config/config_loader.h"

namespace pagoda::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;      // a runtime failure after start-up
constexpr int kExitConfigError = 2;  // bad config, flags or files: nothing heavy was started

// A flag that is another spelling of one config key: `--max-model-len N` is
// `--set model.max_model_len=N`. `list` flags may repeat and set a list key.
struct KeyFlag {
  const char* flag;  // "--max-model-len"
  const char* key;   // "model.max_model_len"
  const char* help;
  bool list = false;
};

// The key flags of `serve` and `info`.
const std::vector<KeyFlag>& serve_key_flags();

// --config FILE, --set key=value (repeatable) and a set of key flags.
struct ConfigFlags {
  std::string file;
  std::vector<std::string> sets;
  std::vector<KeyFlag> key_flags;
  std::vector<std::vector<std::string>> key_flag_values;  // one entry per key_flags[i]
  std::string positional_model;                           // `pagoda serve MODEL`

  // Adds --config, --set and `flags` to `app`; with `positional_model`, also
  // an optional MODEL argument (same as --model).
  void add_to(CLI::App& app, std::vector<KeyFlag> flags, bool positional_model = false);
  // Whether the key flag `flag` was given.
  bool given(const std::string& flag) const;
  // Loads and validates: defaults < file < PAGODA_<SECTION>_<KEY> < key flags
  // < --set (in order). A bad key-flag value is reported naming the flag. On
  // error prints it to stderr and returns nullopt.
  std::optional<LoadedConfig> load() const;

 private:
  // (flag as typed, "key=value") for every key flag given, in table order.
  std::vector<std::pair<std::string, std::string>> flag_overrides() const;
};

// Prints "pagoda: error: MESSAGE" to stderr.
void print_error(const std::string& message);

}  // namespace pagoda::cli
