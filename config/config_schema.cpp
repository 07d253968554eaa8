#include "config/config_schema.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>

#include "common/cpu_isa.h"
#include "common/nearest_word.h"

namespace pagoda {
namespace {

template <typename T>
using Ref = T& (*)(ServerConfig&);

// The value as the user wrote it, shortened for messages.
std::string shown(const YAML::Node& node) {
  std::string s;
  if (node.IsScalar()) {
    s = "'" + node.Scalar() + "'";
  } else if (node.IsNull()) {
    s = "null";
  } else {
    YAML::Emitter out;
    out << YAML::Flow << node;
    s = out.c_str();
  }
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

Status bad(const std::string& path, const YAML::Node& node, const std::string& allowed) {
  return Status::invalid_argument("config key '" + path + "': got " + shown(node) + ", expected " + allowed);
}

template <typename T>
T& get(Ref<T> ref, const ServerConfig& cfg) {
  return ref(const_cast<ServerConfig&>(cfg));
}

ConfigField string_field(std::string path, Ref<std::string> ref, std::string allowed = "a string") {
  ConfigField f{path, allowed, nullptr, nullptr};
  f.assign = [path, ref, allowed](const YAML::Node& n, ServerConfig& c) -> Status {
    if (!n.IsScalar()) return bad(path, n, allowed);
    ref(c) = n.Scalar();
    return Status::ok();
  };
  f.read = [ref](const ServerConfig& c) { return YAML::Node(get(ref, c)); };
  return f;
}

// A name that goes into HTTP headers and metric labels: printable ASCII
// without spaces, at most 128 characters, or "".
ConfigField name_field(std::string path, Ref<std::string> ref, std::string allowed) {
  ConfigField f = string_field(path, ref, allowed);
  f.assign = [path, allowed, as_string = f.assign](const YAML::Node& n, ServerConfig& c) -> Status {
    const auto printable = [](char ch) { return ch > ' ' && ch < 127; };
    if (n.IsScalar() && (n.Scalar().size() > 128 || !std::all_of(n.Scalar().begin(), n.Scalar().end(), printable)))
      return bad(path, n, allowed);
    return as_string(n, c);
  };
  return f;
}

// A file or directory path: relative values in a config file are resolved
// against the file's folder by the loader.
ConfigField path_field(std::string path, Ref<std::string> ref, std::string allowed) {
  ConfigField f = string_field(std::move(path), ref, std::move(allowed));
  f.is_path = true;
  return f;
}

// `aliases` are other spellings stored as their canonical value ("warning"
// -> "warn"); messages list only the canonical values.
ConfigField enum_field(std::string path, Ref<std::string> ref, std::vector<std::string> values,
                       std::vector<std::pair<std::string, std::string>> aliases = {}) {
  std::string allowed = "one of ";
  for (size_t i = 0; i < values.size(); ++i) allowed += (i ? ", " : "") + values[i];
  ConfigField f{path, allowed, nullptr, nullptr};
  f.assign = [path, ref, values, aliases, allowed](const YAML::Node& n, ServerConfig& c) -> Status {
    if (!n.IsScalar()) return bad(path, n, allowed);
    std::string value = n.Scalar();
    for (const auto& [alias, canonical] : aliases)
      if (value == alias) value = canonical;
    if (std::find(values.begin(), values.end(), value) == values.end()) return bad(path, n, allowed);
    ref(c) = value;
    return Status::ok();
  };
  f.read = [ref](const ServerConfig& c) { return YAML::Node(get(ref, c)); };
  return f;
}

bool parse_int(const YAML::Node& n, int64_t* out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  if (s.empty()) return false;
  size_t pos = 0;
  try {
    long long v = std::stoll(s, &pos, 10);
    if (pos != s.size()) return false;
    *out = v;
    return true;
  } catch (...) {
    return false;
  }
}

bool parse_double(const YAML::Node& n, double* out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  if (s.empty()) return false;
  size_t pos = 0;
  try {
    double v = std::stod(s, &pos);
    if (pos != s.size() || !std::isfinite(v)) return false;
    *out = v;
    return true;
  } catch (...) {
    return false;
  }
}

ConfigField int_field(std::string path, Ref<int64_t> ref, int64_t lo, int64_t hi) {
  std::string allowed = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  ConfigField f{path, allowed, nullptr, nullptr};
  f.assign = [=](const YAML::Node& n, ServerConfig& c) -> Status {
    int64_t v = 0;
    if (!parse_int(n, &v) || v < lo || v > hi) return bad(path, n, allowed);
    ref(c) = v;
    return Status::ok();
  };
  f.read = [ref](const ServerConfig& c) { return YAML::Node(get(ref, c)); };
  return f;
}

ConfigField int_choice_field(std::string path, Ref<int64_t> ref, std::vector<int64_t> values) {
  std::string allowed = "one of ";
  for (size_t i = 0; i < values.size(); ++i) allowed += (i ? ", " : "") + std::to_string(values[i]);
  ConfigField f{path, allowed, nullptr, nullptr};
  f.assign = [=](const YAML::Node& n, ServerConfig& c) -> Status {
    int64_t v = 0;
    if (!parse_int(n, &v) || std::find(values.begin(), values.end(), v) == values.end()) return bad(path, n, allowed);
    ref(c) = v;
    return Status::ok();
  };
  f.read = [ref](const ServerConfig& c) { return YAML::Node(get(ref, c)); };
  return f;
}

std::string fmt_num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

ConfigField double_field(std::string path, Ref<double> ref, double lo, double hi, bool lo_exclusive = false) {
  std::string allowed = "a number " + std::string(lo_exclusive ? "greater than " : "from ") + fmt_num(lo) +
                        (lo_exclusive ? " and up to " : " to ") + fmt_num(hi);
  ConfigField f{path, allowed, nullptr, nullptr};
  f.assign = [=](const YAML::Node& n, ServerConfig& c) -> Status {
    double v = 0;
    if (!parse_double(n, &v) || v > hi || v < lo || (lo_exclusive && v == lo)) return bad(path, n, allowed);
    ref(c) = v;
    return Status::ok();
  };
  // The shortest text that reads back as the same double ("0.05", never
  // yaml-cpp's 17 digits "0.050000000000000003").
  f.read = [ref](const ServerConfig& c) {
    char text[32];
    const auto end = std::to_chars(text, text + sizeof(text), get(ref, c)).ptr;
    YAML::Node node(std::string(text, end));
    return node;
  };
  return f;
}

ConfigField bool_field(std::string path, Ref<bool> ref) {
  std::string allowed = "true or false";
  ConfigField f{path, allowed, nullptr, nullptr};
  f.assign = [=](const YAML::Node& n, ServerConfig& c) -> Status {
    if (!n.IsScalar()) return bad(path, n, allowed);
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") {
      ref(c) = true;
    } else if (s == "false" || s == "False" || s == "FALSE") {
      ref(c) = false;
    } else {
      return bad(path, n, allowed);
    }
    return Status::ok();
  };
  f.read = [ref](const ServerConfig& c) { return YAML::Node(get(ref, c)); };
  return f;
}

ConfigField string_list_field(std::string path, Ref<std::vector<std::string>> ref) {
  std::string allowed = "a list of non-empty strings";
  ConfigField f{path, allowed, nullptr, nullptr};
  f.assign = [=](const YAML::Node& n, ServerConfig& c) -> Status {
    if (n.IsNull()) {
      ref(c).clear();
      return Status::ok();
    }
    if (!n.IsSequence()) return bad(path, n, allowed);
    std::vector<std::string> out;
    for (const auto& item : n) {
      if (!item.IsScalar() || item.Scalar().empty()) return bad(path, n, allowed);
      out.push_back(item.Scalar());
    }
    ref(c) = std::move(out);
    return Status::ok();
  };
  f.read = [ref](const ServerConfig& c) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& s : get(ref, c)) list.push_back(s);
    return list;
  };
  return f;
}

std::vector<ConfigField> build_fields() {
  constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();
  std::vector<ConfigField> f;
  // model
  f.push_back(path_field(
      "model.path", [](ServerConfig & c) -> auto& { return c.model.path; }, "a file or directory path"));
  f.push_back(enum_field("model.format", [](ServerConfig & c) -> auto& { return c.model.format; },
                         {"auto", "llama2c", "hf", "gguf"}));
  f.push_back(path_field(
      "model.tokenizer", [](ServerConfig & c) -> auto& { return c.model.tokenizer; },
      "a file path, or \"\" to find it beside the model"));
  // Aliases: the names vLLM's --dtype and --kv-cache-dtype take.
  f.push_back(enum_field("model.weight_dtype", [](ServerConfig & c) -> auto& { return c.model.weight_dtype; },
                         {"auto", "f32", "bf16", "int8", "int4"},
                         {{"float32", "f32"}, {"float", "f32"}, {"bfloat16", "bf16"}}));
  f.push_back(int_field(
      "model.max_model_len", [](ServerConfig & c) -> auto& { return c.model.max_model_len; }, 0, 1 << 20));
  f.push_back(string_field(
      "model.name", [](ServerConfig & c) -> auto& { return c.model.name; }));
  f.push_back(
      enum_field("model.pooling", [](ServerConfig & c) -> auto& { return c.model.pooling; }, {"last", "mean", "cls"}));
  // kv
  f.push_back(int_choice_field("kv.page_size", [](ServerConfig & c) -> auto& { return c.kv.page_size; },
                               {8, 16, 32, 64, 128, 256}));
  f.push_back(enum_field(
      "kv.dtype", [](ServerConfig & c) -> auto& { return c.kv.dtype; }, {"f32", "bf16", "f16", "int8", "int4"},
      {{"float32", "f32"}, {"float", "f32"}, {"bfloat16", "bf16"}, {"float16", "f16"}, {"half", "f16"}}));
  f.push_back(double_field(
      "kv.memory_gib", [](ServerConfig & c) -> auto& { return c.kv.memory_gib; }, 0, 1024, /*lo_exclusive=*/true));
  f.push_back(int_field(
      "kv.num_pages", [](ServerConfig & c) -> auto& { return c.kv.num_pages; }, 0, kMaxInt));
  f.push_back(bool_field(
      "kv.prefix_caching", [](ServerConfig & c) -> auto& { return c.kv.prefix_caching; }));
  f.push_back(bool_field(
      "kv.prefault", [](ServerConfig & c) -> auto& { return c.kv.prefault; }));
  // scheduler
  f.push_back(int_field(
      "scheduler.max_num_seqs", [](ServerConfig & c) -> auto& { return c.scheduler.max_num_seqs; }, 1, 4096));
  f.push_back(int_field(
      "scheduler.max_num_batched_tokens", [](ServerConfig & c) -> auto& { return c.scheduler.max_num_batched_tokens; },
      1, 1 << 20));
  f.push_back(int_field(
      "scheduler.prefill_join_tokens", [](ServerConfig & c) -> auto& { return c.scheduler.prefill_join_tokens; }, 0,
      1 << 20));
  f.push_back(bool_field(
      "scheduler.chunked_prefill", [](ServerConfig & c) -> auto& { return c.scheduler.chunked_prefill; }));
  f.push_back(enum_field("scheduler.policy", [](ServerConfig & c) -> auto& { return c.scheduler.policy; },
                         {"fcfs", "priority"}));
  f.push_back(int_field(
      "scheduler.max_queue", [](ServerConfig & c) -> auto& { return c.scheduler.max_queue; }, 0, 1 << 20));
  f.push_back(double_field(
      "scheduler.queue_timeout_s", [](ServerConfig & c) -> auto& { return c.scheduler.queue_timeout_s; }, 0, 86400));
  // server
  f.push_back(string_field(
      "server.host", [](ServerConfig & c) -> auto& { return c.server.host; }, "an IP address or host name"));
  f.push_back(int_field(
      "server.port", [](ServerConfig & c) -> auto& { return c.server.port; }, 0, 65535));
  f.push_back(int_field(
      "server.io_threads", [](ServerConfig & c) -> auto& { return c.server.io_threads; }, 1, 256));
  ConfigField keys = string_list_field(
      "server.api_keys", [](ServerConfig & c) -> auto& { return c.server.api_keys; });
  keys.secret = true;
  f.push_back(keys);
  f.push_back(path_field(
      "server.api_key_file", [](ServerConfig & c) -> auto& { return c.server.api_key_file; }, "a file path, or \"\""));
  f.push_back(int_field(
      "server.max_body_bytes", [](ServerConfig & c) -> auto& { return c.server.max_body_bytes; }, 1024,
      int64_t{1} << 30));
  f.push_back(int_field(
      "server.max_connections", [](ServerConfig & c) -> auto& { return c.server.max_connections; }, 1, 1 << 20));
  f.push_back(int_field(
      "server.max_connections_per_client",
      [](ServerConfig & c) -> auto& { return c.server.max_connections_per_client; }, 1, 1 << 20));
  f.push_back(int_field(
      "server.max_header_fields", [](ServerConfig & c) -> auto& { return c.server.max_header_fields; }, 1, 10000));
  f.push_back(double_field(
      "server.header_timeout_s", [](ServerConfig & c) -> auto& { return c.server.header_timeout_s; }, 0, 3600, true));
  f.push_back(double_field(
      "server.idle_timeout_s", [](ServerConfig & c) -> auto& { return c.server.idle_timeout_s; }, 0, 86400, true));
  f.push_back(double_field(
      "server.shutdown_grace_s", [](ServerConfig & c) -> auto& { return c.server.shutdown_grace_s; }, 0, 3600));
  f.push_back(name_field(
      "server.replica_id", [](ServerConfig & c) -> auto& { return c.server.replica_id; },
      "a name of up to 128 printable ASCII characters without spaces, or \"\" (the host name and port)"));
  f.push_back(enum_field("server.chat_template", [](ServerConfig & c) -> auto& { return c.server.chat_template; },
                         {"auto", "llama2", "chatml", "plain", "llama3", "mistral", "zephyr"}));
  f.push_back(enum_field("server.tool_call_parser", [](ServerConfig & c) -> auto& { return c.server.tool_call_parser; },
                         {"auto", "hermes", "llama3_json", "mistral", "json"}));
  // engine
  f.push_back(int_field(
      "engine.threads", [](ServerConfig & c) -> auto& { return c.engine.threads; }, 0, 1024));
  std::vector<std::string> isa_values = {"auto"};  // or a level of common/cpu_isa.h
  for (IsaLevel level : kAllIsaLevels) isa_values.emplace_back(isa_level_name(level));
  f.push_back(enum_field(
      "engine.isa", [](ServerConfig & c) -> auto& { return c.engine.isa; }, isa_values));
  // structured outputs
  f.push_back(int_field(
      "structured.memory_mib", [](ServerConfig & c) -> auto& { return c.structured.memory_mib; }, 16, 1 << 20));
  // logging
  f.push_back(enum_field("logging.level", [](ServerConfig & c) -> auto& { return c.logging.level; },
                         {"trace", "debug", "info", "warn", "error", "off"}, {{"warning", "warn"}}));
  f.push_back(
      enum_field("logging.format", [](ServerConfig & c) -> auto& { return c.logging.format; }, {"text", "json"}));
  f.push_back(double_field(
      "logging.stats_interval_s", [](ServerConfig & c) -> auto& { return c.logging.stats_interval_s; }, 0, 86400));
  f.push_back(bool_field(
      "logging.log_prompts", [](ServerConfig & c) -> auto& { return c.logging.log_prompts; }));
  return f;
}

std::string_view leaf(std::string_view path) {
  size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

}  // namespace

const std::vector<ConfigField>& config_fields() {
  static const std::vector<ConfigField> fields = build_fields();
  return fields;
}

const ConfigField* find_config_field(std::string_view path) {
  for (const auto& f : config_fields())
    if (f.path == path) return &f;
  return nullptr;
}

std::string did_you_mean(std::string_view unknown) {
  // Candidates: whole paths and section names. A key under the wrong section
  // (same leaf name) is matched too.
  std::vector<std::string> candidates;
  for (const auto& f : config_fields()) {
    candidates.push_back(f.path);
    std::string section = f.path.substr(0, f.path.find('.'));
    if (std::find(candidates.begin(), candidates.end(), section) == candidates.end()) candidates.push_back(section);
  }
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    size_t d = edit_distance(unknown, c);
    if (leaf(unknown) == leaf(c) && unknown.find('.') != std::string_view::npos && c.find('.') != std::string::npos)
      d = std::min<size_t>(d, 1);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  size_t limit = std::max<size_t>(2, unknown.size() / 4);
  if (best.empty() || best_d > limit) return "";
  return " (did you mean '" + best + "'?)";
}

}  // namespace pagoda
