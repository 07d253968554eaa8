#include "tokenizer/tokenizer_hf_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace pagoda {

using nlohmann::json;

namespace {

// The file's text, or nullopt when it does not exist.
std::optional<std::string> read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<json> read_json(const std::filesystem::path& p, bool* present) {
  auto text = read_text(p);
  *present = text.has_value();
  if (!text) return json();
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::data_loss(p.string() + ": not valid JSON");
  return j;
}

// "bos_token": "<s>" or {"content": "<s>", ...}.
std::optional<std::string> token_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

void add_ids(const json& j, const char* key, std::vector<int32_t>* ids) {
  auto it = j.find(key);
  if (it == j.end()) return;
  auto add = [&](const json& v) {
    if (!v.is_number_integer()) return;
    const auto id = v.get<int32_t>();
    if (std::find(ids->begin(), ids->end(), id) == ids->end()) ids->push_back(id);
  };
  if (it->is_array())
    for (const json& v : *it) add(v);
  else add(*it);
}

}  // namespace

Result<HfTokenizerConfig> read_hf_tokenizer_config(const std::string& dir) {
  namespace fs = std::filesystem;
  HfTokenizerConfig c;
  bool present = false;
  auto tc = read_json(fs::path(dir) / "tokenizer_config.json", &present);
  if (!tc) return tc.status();
  if (present && tc->is_object()) {
    const json& j = *tc;
    c.bos_token = token_string(j, "bos_token");
    c.eos_token = token_string(j, "eos_token");
    if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean())
      c.add_bos_token = j["add_bos_token"].get<bool>();
    if (j.contains("add_eos_token") && j["add_eos_token"].is_boolean())
      c.add_eos_token = j["add_eos_token"].get<bool>();
    if (j.contains("chat_template")) {
      const json& t = j["chat_template"];
      if (t.is_string()) {
        c.chat_template = t.get<std::string>();
      } else if (t.is_array()) {  // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
        for (const json& e : t)
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
            c.chat_template = e["template"].get<std::string>();
      }
    }
  }
  if (c.chat_template.empty()) {
    if (auto jinja = read_text(fs::path(dir) / "chat_template.jinja")) c.chat_template = *jinja;
  }
  for (const char* name : {"generation_config.json", "config.json"}) {
    auto j = read_json(fs::path(dir) / name, &present);
    if (!j) return j.status();
    if (!present || !j->is_object()) continue;
    if (!c.bos_token_id && j->contains("bos_token_id") && (*j)["bos_token_id"].is_number_integer())
      c.bos_token_id = (*j)["bos_token_id"].get<int32_t>();
    add_ids(*j, "eos_token_id", &c.eos_token_ids);
  }
  return c;
}

}  // namespace pagoda
