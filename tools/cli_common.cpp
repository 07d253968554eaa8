#include "tools/cli_common.h"

#include <iostream>

#include <nlohmann/json.hpp>

#include "config/config_env.h"

namespace pagoda::cli {

const std::vector<KeyFlag>& serve_key_flags() {
  static const std::vector<KeyFlag> flags = {
      {"--host", "server.host", "Listen address"},
      {"--port", "server.port", "Listen port"},
      {"--model", "model.path", "Model checkpoint file or Hugging Face directory"},
      {"--tokenizer", "model.tokenizer", "Tokenizer file"},
      {"--served-model-name", "model.name", "Model id in the API"},
      {"--max-model-len", "model.max_model_len", "Prompt + output tokens per request"},
      {"--dtype", "model.weight_dtype", "Weight dtype: auto | f32 | bf16 | int8 | int4"},
      {"--kv-cache-dtype", "kv.dtype", "KV dtype: f32 | bf16 | f16 | int8 | int4"},
      {"--block-size", "kv.page_size", "Tokens per KV page"},
      {"--max-num-seqs", "scheduler.max_num_seqs", "Sequences in one engine step"},
      {"--max-num-batched-tokens", "scheduler.max_num_batched_tokens", "Tokens in one engine step"},
      {"--api-key", "server.api_keys", "Accepted bearer key (repeatable)", true},
      {"--threads", "engine.threads", "Compute threads (0 = all cores)"},
      {"--log-level", "logging.level", "trace | debug | info | warn | error | off"},
  };
  return flags;
}

void ConfigFlags::add_to(CLI::App& app, std::vector<KeyFlag> flags, bool with_positional_model) {
  key_flags = std::move(flags);
  key_flag_values.assign(key_flags.size(), {});
  app.add_option("--config,-c", file, "YAML config file (default: built-in defaults)");
  // One value per occurrence, so a repeatable flag cannot swallow the
  // positional MODEL or FILE after it.
  app.add_option("--set", sets, "Override any key: --set kv.page_size=32 (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  for (size_t i = 0; i < key_flags.size(); ++i) {
    const KeyFlag& f = key_flags[i];
    auto* opt = app.add_option(f.flag, key_flag_values[i], std::string(f.help) + " (= --set " + f.key + ")");
    opt->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  }
  if (with_positional_model)
    app.add_option("MODEL", positional_model, "Model checkpoint file or Hugging Face directory (same as --model)");
}

bool ConfigFlags::given(const std::string& flag) const {
  for (size_t i = 0; i < key_flags.size(); ++i)
    if (flag == key_flags[i].flag) return !key_flag_values[i].empty();
  return false;
}

std::vector<std::pair<std::string, std::string>> ConfigFlags::flag_overrides() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (!positional_model.empty()) out.emplace_back("MODEL", "model.path=" + nlohmann::json(positional_model).dump());
  for (size_t i = 0; i < key_flags.size(); ++i) {
    const std::vector<std::string>& values = key_flag_values[i];
    if (values.empty()) continue;
    // JSON-quoted, so a flag's value is taken as typed, never as YAML
    // structure (a JSON list is a YAML flow list; quoting does not change
    // how numbers and booleans are read).
    const std::string value = key_flags[i].list ? nlohmann::json(values).dump() : nlohmann::json(values.back()).dump();
    out.emplace_back(key_flags[i].flag, std::string(key_flags[i].key) + "=" + value);
  }
  return out;
}

std::optional<LoadedConfig> ConfigFlags::load() const {
  // The environment (PAGODA_<SECTION>_<KEY>) beats the file; the flags beat both.
  auto from_env = config_overrides_from_environment(process_environment());
  if (!from_env) {
    print_error(from_env.status().message());
    return std::nullopt;
  }
  std::vector<std::string> all = std::move(from_env).value();
  if (!positional_model.empty() && given("--model")) {
    print_error("the model is given twice (MODEL and --model): give one");
    return std::nullopt;
  }
  std::vector<std::pair<std::string, std::string>> from_flags;
  try {
    from_flags = flag_overrides();
  } catch (const nlohmann::json::exception&) {  // dump() of bytes that are not UTF-8
    print_error("a flag's value is not valid UTF-8 text");
    return std::nullopt;
  }
  for (const auto& [flag, override_text] : from_flags) {
    if (Status st = check_override(override_text); !st) {
      print_error(flag + ": " + st.message());
      return std::nullopt;
    }
    all.push_back(override_text);
  }
  all.insert(all.end(), sets.begin(), sets.end());
  auto loaded = load_config(file, all);
  if (!loaded) {
    print_error(loaded.status().message());
    return std::nullopt;
  }
  return std::move(loaded).value();
}

void print_error(const std::string& message) { std::cerr << "pagoda: error: " << message << "\n"; }

}  // namespace pagoda::cli
