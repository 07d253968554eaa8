#include "config/config_loader.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/config_schema.h"

namespace pagoda {
namespace {

// Offset of the first byte that is not part of well-formed UTF-8, or npos.
// YAML is Unicode text; yaml-cpp reads invalid bytes as U+FFFD, so a config
// holding them would not read back as it was printed (found by fuzz_config).
size_t first_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80                   ? 1
                 : (b >= 0xC2 && b <= 0xDF) ? 2
                 : (b >= 0xE0 && b <= 0xEF) ? 3
                 : (b >= 0xF0 && b <= 0xF4) ? 4
                                            : 0;
    if (len == 0 || i + len > s.size()) return i;
    unsigned cp = len == 1 ? b : b & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

Status apply_key(const std::string& path, const YAML::Node& value, LoadedConfig& out,
                 const std::filesystem::path& relative_to = {}) {
  const ConfigField* field = find_config_field(path);
  if (field == nullptr) return Status::invalid_argument("unknown config key '" + path + "'" + did_you_mean(path));
  PAGODA_RETURN_IF_ERROR(field->assign(value, out.config));
  if (field->is_path && !relative_to.empty()) {
    // A path in a config file means the same wherever the server starts.
    YAML::Node text = field->read(out.config);
    const std::filesystem::path given(text.Scalar());
    if (!given.empty() && given.is_relative())
      PAGODA_RETURN_IF_ERROR(field->assign(YAML::Node((relative_to / given).lexically_normal().string()), out.config));
  }
  out.explicit_keys.insert(path);
  return Status::ok();
}

// kv.memory_gib and kv.num_pages are two ways to size the pool: given in
// one place they contradict (validate_config says so), but a later, more
// specific layer (the environment or a flag over the file) wins, and the
// loser is noted for the start-up log.
void settle_pool_size(const std::string& path, LoadedConfig& out) {
  ServerConfig& c = out.config;
  if (path == "kv.num_pages" && c.kv.num_pages > 0 && out.explicit_keys.erase("kv.memory_gib") > 0) {
    out.notes.push_back("kv.num_pages=" + std::to_string(c.kv.num_pages) + " replaces the earlier kv.memory_gib=" +
                        YAML::Dump(find_config_field("kv.memory_gib")->read(c)));
  } else if (path == "kv.memory_gib" && out.explicit_keys.erase("kv.num_pages") > 0) {
    if (c.kv.num_pages > 0)
      out.notes.push_back("kv.memory_gib=" + YAML::Dump(find_config_field("kv.memory_gib")->read(c)) +
                          " replaces the earlier kv.num_pages=" + std::to_string(c.kv.num_pages));
    c.kv.num_pages = 0;
  }
}

Status apply_document(const YAML::Node& root, const std::string& source, const std::filesystem::path& relative_to,
                      LoadedConfig& out) {
  if (!root || root.IsNull()) return Status::ok();  // empty file: defaults
  if (!root.IsMap())
    return Status::invalid_argument(source +
                                    ": the top level must be a mapping of sections "
                                    "(model, kv, scheduler, server, engine, structured, logging)");
  std::set<std::string> sections_seen;
  for (const auto& section : root) {
    if (!section.first.IsScalar()) return Status::invalid_argument(source + ": section names must be plain strings");
    const std::string name = section.first.Scalar();
    // YAML forbids duplicate keys; yaml-cpp keeps both, and one would win
    // silently.
    if (!sections_seen.insert(name).second)
      return Status::invalid_argument(source + ": config section '" + name + "' appears twice");
    bool known = false;
    for (const auto& f : config_fields()) known = known || f.path.rfind(name + ".", 0) == 0;
    if (!known) return Status::invalid_argument("unknown config section '" + name + "'" + did_you_mean(name));
    if (section.second.IsNull()) continue;  // "kv:" with nothing under it
    if (!section.second.IsMap())
      return Status::invalid_argument("config section '" + name + "' must be a mapping of keys to values");
    std::set<std::string> keys_seen;
    for (const auto& kv : section.second) {
      if (!kv.first.IsScalar()) return Status::invalid_argument("config section '" + name + "': keys must be strings");
      if (!keys_seen.insert(kv.first.Scalar()).second)
        return Status::invalid_argument(source + ": config key '" + name + "." + kv.first.Scalar() + "' appears twice");
      PAGODA_RETURN_IF_ERROR(apply_key(name + "." + kv.first.Scalar(), kv.second, out, relative_to));
    }
  }
  return Status::ok();
}

Status apply_override(const std::string& text, LoadedConfig& out) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    return Status::invalid_argument("override '" + text + "' must look like section.key=value (e.g. kv.page_size=32)");
  std::string path = text.substr(0, eq);
  std::string value = text.substr(eq + 1);
  YAML::Node node;
  try {
    node = YAML::Load(value);
  } catch (const YAML::Exception&) {
    node = YAML::Node(value);  // not valid YAML: take it as a plain string
  }
  if (!node.IsDefined() || (node.IsNull() && value.empty())) node = YAML::Node(std::string());
  PAGODA_RETURN_IF_ERROR(apply_key(path, node, out));
  settle_pool_size(path, out);
  return Status::ok();
}

}  // namespace

Status check_override(const std::string& text) {
  LoadedConfig scratch;
  return apply_override(text, scratch);
}

namespace {

std::string gib(double bytes) {
  std::ostringstream os;
  os << bytes / (1024.0 * 1024 * 1024);
  return os.str();
}

}  // namespace

Result<LoadedConfig> parse_config(std::string_view yaml_text, const std::vector<std::string>& overrides,
                                  const std::string& source, const std::string& relative_to) {
  LoadedConfig out;
  if (size_t bad = first_invalid_utf8(yaml_text); bad != std::string_view::npos)
    return Status::invalid_argument(source + ": not valid UTF-8 text (byte offset " + std::to_string(bad) + ")");
  for (const auto& o : overrides)
    if (size_t bad = first_invalid_utf8(o); bad != std::string_view::npos)
      return Status::invalid_argument("a --set override is not valid UTF-8 text (byte offset " + std::to_string(bad) +
                                      ")");
  YAML::Node root;
  try {
    // A second document ('---' after content) is refused; found in the text,
    // since yaml-cpp's LoadAll hung on a fuzzed input.
    bool content = false;
    for (size_t at = 0; at < yaml_text.size();) {
      size_t end = yaml_text.find('\n', at);
      if (end == std::string_view::npos) end = yaml_text.size();
      const std::string_view line = yaml_text.substr(at, end - at);
      if (line.rfind("---", 0) == 0 && (line.size() == 3 || line[3] == ' ' || line[3] == '\r')) {
        if (content)
          return Status::invalid_argument(source +
                                          ": holds 2 YAML documents (separated by '---'); a config is one document");
      } else if (!line.empty() && line[0] != '#' && line[0] != '\r') {
        content = true;
      }
      at = end + 1;
    }
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::ParserException& e) {
    return Status::invalid_argument(source + ": YAML syntax error at line " + std::to_string(e.mark.line + 1) +
                                    ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const YAML::Exception& e) {
    return Status::invalid_argument(source + ": cannot parse YAML: " + e.what());
  }
  PAGODA_RETURN_IF_ERROR(apply_document(root, source, relative_to, out));
  for (const auto& o : overrides) PAGODA_RETURN_IF_ERROR(apply_override(o, out));
  // The default tokenizer belongs to the default model: another model
  // given without a tokenizer brings its own ("" = beside the model).
  if (out.explicit_keys.count("model.path") > 0 && out.explicit_keys.count("model.tokenizer") == 0)
    out.config.model.tokenizer.clear();
  PAGODA_RETURN_IF_ERROR(validate_config(out.config, out.explicit_keys));
  return out;
}

Result<LoadedConfig> load_config(const std::string& file, const std::vector<std::string>& overrides) {
  std::string text;
  if (!file.empty()) {
    // A config that cannot be read is an error, never "the defaults" (which
    // would silently drop, say, the intended server.api_keys).
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec))
      return Status::invalid_argument("cannot read config file '" + file + "': it is a directory");
    std::ifstream in(file, std::ios::binary);
    if (!in) return Status::not_found("cannot read config file '" + file + "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad() || (ss.fail() && in.peek() != std::char_traits<char>::eof()))
      return Status::invalid_argument("cannot read config file '" + file + "'");
    text = ss.str();
  }
  if (file.empty()) return parse_config(text, overrides, "<defaults>");
  // "." rather than "" for a file in the working directory: relative paths
  // stay relative (and readable in messages) either way.
  std::string folder = std::filesystem::path(file).parent_path().string();
  return parse_config(text, overrides, file, folder.empty() ? "." : folder);
}

Status validate_config(const ServerConfig& c, const std::set<std::string>& explicit_keys) {
  auto given = [&](const char* key) { return explicit_keys.count(key) > 0; };
  if (c.kv.num_pages > 0 && given("kv.memory_gib"))
    return Status::invalid_argument(
        "config keys 'kv.memory_gib' and 'kv.num_pages' contradict each other: give one "
        "(num_pages " +
        std::to_string(c.kv.num_pages) + ", memory_gib " + gib(c.kv.memory_gib * 1024 * 1024 * 1024) + ")");
  if (c.kv.num_pages > 0 && c.kv.num_pages < 2)
    return Status::invalid_argument("config key 'kv.num_pages': got " + std::to_string(c.kv.num_pages) +
                                    ", expected 0 (derive from memory_gib) or at least 2");
  if (!c.server.api_keys.empty() && !c.server.api_key_file.empty())
    return Status::invalid_argument(
        "config keys 'server.api_keys' and 'server.api_key_file' contradict each other: give one");
  if (c.scheduler.max_num_batched_tokens < c.scheduler.max_num_seqs)
    return Status::invalid_argument(
        "config key 'scheduler.max_num_batched_tokens' (" + std::to_string(c.scheduler.max_num_batched_tokens) +
        ") must be at least 'scheduler.max_num_seqs' (" + std::to_string(c.scheduler.max_num_seqs) +
        "): every running sequence needs a token per step");
  if (!c.scheduler.chunked_prefill && c.model.max_model_len > 0 &&
      c.model.max_model_len > c.scheduler.max_num_batched_tokens)
    return Status::invalid_argument("config key 'scheduler.max_num_batched_tokens' (" +
                                    std::to_string(c.scheduler.max_num_batched_tokens) +
                                    ") must be at least "
                                    "'model.max_model_len' (" +
                                    std::to_string(c.model.max_model_len) +
                                    ") when 'scheduler.chunked_prefill' is false: a whole prompt must fit in one step");
  if (c.kv.num_pages > 0 && c.model.max_model_len > 0 && c.kv.num_pages * c.kv.page_size < c.model.max_model_len)
    return Status::invalid_argument("config key 'kv.num_pages' (" + std::to_string(c.kv.num_pages) + " pages of " +
                                    std::to_string(c.kv.page_size) +
                                    " tokens) cannot hold one sequence of "
                                    "'model.max_model_len' (" +
                                    std::to_string(c.model.max_model_len) + ") tokens");
  if (c.model.path.empty())
    return Status::invalid_argument("config key 'model.path': got '', expected a file or directory path");
  if (c.server.host.empty())
    return Status::invalid_argument("config key 'server.host': got '', expected an IP address or host name");
  if (c.model.format == "llama2c" && c.model.tokenizer.empty())
    return Status::invalid_argument(
        "config key 'model.tokenizer': a llama2c checkpoint needs a tokenizer file (got '')");
  return Status::ok();
}

Status check_config_paths(const ServerConfig& c) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(c.model.path, ec))
    return Status::not_found("config key 'model.path': '" + c.model.path +
                             "' does not exist (run tools/setup.sh to fetch the default model)");
  if (!c.model.tokenizer.empty() && !fs::is_regular_file(c.model.tokenizer, ec))
    return Status::not_found("config key 'model.tokenizer': '" + c.model.tokenizer + "' is not a readable file");
  if (!c.server.api_key_file.empty() && !fs::is_regular_file(c.server.api_key_file, ec))
    return Status::not_found("config key 'server.api_key_file': '" + c.server.api_key_file +
                             "' is not a readable file");
  return Status::ok();
}

std::string config_to_yaml(const ServerConfig& cfg) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string section;
  for (const auto& f : config_fields()) {
    std::string s = f.path.substr(0, f.path.find('.'));
    if (s != section) {
      if (!section.empty()) out << YAML::EndMap;
      out << YAML::Key << s << YAML::Value << YAML::BeginMap;
      section = s;
    }
    YAML::Node value = f.read(cfg);
    if (f.secret && value.IsSequence()) {
      YAML::Node masked(YAML::NodeType::Sequence);
      for (size_t i = 0; i < value.size(); ++i) masked.push_back("***");
      value = masked;
    }
    out << YAML::Key << f.path.substr(s.size() + 1) << YAML::Value;
    if (value.IsSequence()) out << YAML::Flow;
    out << value;
  }
  if (!section.empty()) out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

nlohmann::ordered_json config_to_json(const ServerConfig& cfg) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& f : config_fields()) {
    const size_t dot = f.path.find('.');
    const YAML::Node value = f.read(cfg);
    nlohmann::ordered_json v;
    if (value.IsSequence()) {
      v = nlohmann::ordered_json::array();
      for (const auto& item : value) v.push_back(f.secret ? std::string("***") : item.Scalar());
    } else {
      // The schema's readers give scalars as text: numbers and booleans
      // become JSON numbers and booleans, the rest strings.
      const std::string& text = value.Scalar();
      v = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!v.is_number() && !v.is_boolean()) v = text;
    }
    out[f.path.substr(0, dot)][f.path.substr(dot + 1)] = std::move(v);
  }
  return out;
}

}  // namespace pagoda
