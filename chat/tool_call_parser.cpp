// Tool-call parsing (see tool_call_parser.h).
#include "chat/tool_call_parser.h"

#include <algorithm>
#include <optional>

#include <nlohmann/json.hpp>

namespace pagoda {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

std::string_view trim(std::string_view s) {
  const size_t b = skip_space(s, 0);
  size_t e = s.size();
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// One call object ({"name": ..., "arguments" or "parameters": ...}) as a
// ChatToolCall, or nullopt when it is not one.
std::optional<ChatToolCall> call_from_json(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty()) return std::nullopt;
  ChatToolCall call;
  call.name = name->get<std::string>();
  auto args = j.find("arguments");
  if (args == j.end()) args = j.find("parameters");
  if (args == j.end() || args->is_null()) call.arguments = "{}";
  else if (args->is_string()) call.arguments = args->get<std::string>();  // already JSON text
  else if (args->is_object()) call.arguments = args->dump();
  else return std::nullopt;
  return call;
}

// Calls from a JSON value: one call object or an array of them.
bool append_calls(const Json& j, std::vector<ChatToolCall>* calls) {
  if (j.is_array()) {
    if (j.empty()) return false;
    for (const Json& item : j) {
      auto call = call_from_json(item);
      if (!call) return false;
      calls->push_back(std::move(*call));
    }
    return true;
  }
  auto call = call_from_json(j);
  if (!call) return false;
  calls->push_back(std::move(*call));
  return true;
}

std::optional<Json> parse_json(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// The end of the JSON object or array starting at s[start] (one past its
// closing bracket), or npos when it does not close.
size_t json_value_end(std::string_view s, size_t start) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = start; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

ParsedToolCalls as_content(std::string_view text) { return {std::string(text), {}}; }

ParsedToolCalls parse_hermes(std::string_view text) {
  const size_t first = text.find(kHermesOpen);
  if (first == std::string_view::npos) return as_content(text);
  ParsedToolCalls out;
  out.content = std::string(text.substr(0, first));
  size_t pos = first;
  while (pos != std::string_view::npos) {
    const size_t body = pos + kHermesOpen.size();
    const size_t close = text.find(kHermesClose, body);
    // A reply cut short (max_tokens) may lack the closing tag.
    const std::string_view inner =
        text.substr(body, close == std::string_view::npos ? text.size() - body : close - body);
    auto j = parse_json(trim(inner));
    if (!j || !append_calls(*j, &out.calls)) return as_content(text);
    if (close == std::string_view::npos) break;
    pos = text.find(kHermesOpen, close + kHermesClose.size());
    // Only whitespace may separate the blocks and follow the last.
    const std::string_view between =
        text.substr(close + kHermesClose.size(),
                    (pos == std::string_view::npos ? text.size() : pos) - (close + kHermesClose.size()));
    if (!trim(between).empty()) return as_content(text);
  }
  return out;
}

ParsedToolCalls parse_llama3(std::string_view text) {
  size_t i = skip_space(text, 0);
  if (text.substr(i).starts_with(kPythonTag)) i = skip_space(text, i + kPythonTag.size());
  if (i >= text.size() || text[i] != '{') return as_content(text);
  ParsedToolCalls out;
  // One or more objects separated by ';'.
  while (true) {
    const size_t end = json_value_end(text, i);
    if (end == std::string_view::npos) return as_content(text);
    auto j = parse_json(text.substr(i, end - i));
    if (!j || !j->is_object() || !append_calls(*j, &out.calls)) return as_content(text);
    i = skip_space(text, end);
    if (i >= text.size()) break;
    if (text[i] != ';') return as_content(text);
    i = skip_space(text, i + 1);
    if (i >= text.size()) break;
  }
  return out;
}

// A JSON call (or array of calls) filling text[start..] up to trailing whitespace.
bool parse_json_tail(std::string_view text, size_t start, ParsedToolCalls* out) {
  auto j = parse_json(trim(text.substr(start)));
  return j && append_calls(*j, &out->calls);
}

ParsedToolCalls parse_mistral(std::string_view text) {
  ParsedToolCalls out;
  const size_t marker = text.find(kMistralMarker);
  if (marker != std::string_view::npos) {
    out.content = std::string(text.substr(0, marker));
    if (!parse_json_tail(text, marker + kMistralMarker.size(), &out)) return as_content(text);
    return out;
  }
  const size_t i = skip_space(text, 0);
  if (i < text.size() && text[i] == '[' && parse_json_tail(text, i, &out)) return out;
  return as_content(text);
}

ParsedToolCalls parse_generic(std::string_view text) {
  const size_t i = skip_space(text, 0);
  ParsedToolCalls out;
  if (i < text.size() && (text[i] == '{' || text[i] == '[') && parse_json_tail(text, i, &out)) return out;
  return as_content(text);
}

// The length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t partial_marker_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

Result<ToolCallFormat> parse_tool_call_format(const std::string& name) {
  if (name == "hermes") return ToolCallFormat::kHermes;
  if (name == "llama3_json") return ToolCallFormat::kLlama3Json;
  if (name == "mistral") return ToolCallFormat::kMistral;
  if (name == "json") return ToolCallFormat::kJson;
  return Status::invalid_argument("unknown tool call parser '" + name +
                                  "' (expected auto, hermes, llama3_json, mistral or json)");
}

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kLlama3Json:
      return "llama3_json";
    case ToolCallFormat::kMistral:
      return "mistral";
    case ToolCallFormat::kJson:
      return "json";
  }
  return "json";
}

ToolCallFormat detect_tool_call_format(std::string_view source) {
  if (source.find(kHermesOpen) != std::string_view::npos) return ToolCallFormat::kHermes;
  if (source.find(kMistralMarker) != std::string_view::npos) return ToolCallFormat::kMistral;
  if (source.find("<|start_header_id|>") != std::string_view::npos &&
      (source.find("\"parameters\"") != std::string_view::npos || source.find(kPythonTag) != std::string_view::npos))
    return ToolCallFormat::kLlama3Json;
  return ToolCallFormat::kJson;
}

ParsedToolCalls parse_tool_calls(std::string_view text, ToolCallFormat format, const std::set<std::string>& functions) {
  ParsedToolCalls parsed;
  switch (format) {
    case ToolCallFormat::kHermes:
      parsed = parse_hermes(text);
      break;
    case ToolCallFormat::kLlama3Json:
      parsed = parse_llama3(text);
      break;
    case ToolCallFormat::kMistral:
      parsed = parse_mistral(text);
      break;
    case ToolCallFormat::kJson:
      parsed = parse_generic(text);
      break;
  }
  for (const ChatToolCall& call : parsed.calls) {
    if (!functions.empty() && !functions.count(call.name)) return as_content(text);
  }
  return parsed;
}

std::string ToolCallStreamer::feed(std::string_view delta) {
  text_ += delta;
  if (in_call_) return {};
  size_t keep_from = text_.size();  // text_[keep_from..] is held back
  switch (format_) {
    case ToolCallFormat::kHermes:
    case ToolCallFormat::kMistral: {
      const std::string_view marker = format_ == ToolCallFormat::kHermes ? kHermesOpen : kMistralMarker;
      const size_t found = text_.find(marker, released_ >= marker.size() ? released_ - marker.size() : 0);
      if (found != std::string::npos) {
        keep_from = found;
        in_call_ = true;
      } else {
        keep_from = text_.size() - partial_marker_suffix(text_, marker);
      }
      // Mistral's marker may be dropped in decoding: a reply that starts
      // with '[' may be the bare array of calls.
      if (format_ == ToolCallFormat::kMistral && released_ == 0) {
        const size_t i = skip_space(text_, 0);
        if (i == text_.size()) keep_from = 0;
        else if (text_[i] == '[') keep_from = 0, in_call_ = true;
      }
      break;
    }
    case ToolCallFormat::kLlama3Json:
    case ToolCallFormat::kJson: {
      // A call is the whole reply: decided by its first non-space text.
      if (released_ > 0) break;
      const size_t i = skip_space(text_, 0);
      const std::string_view rest = std::string_view(text_).substr(i);
      const bool may_be_tag = format_ == ToolCallFormat::kLlama3Json && kPythonTag.starts_with(rest);
      if (rest.empty() || may_be_tag) {
        keep_from = 0;
      } else if (rest[0] == '{' || (format_ == ToolCallFormat::kJson && rest[0] == '[') ||
                 (format_ == ToolCallFormat::kLlama3Json && rest.starts_with(kPythonTag))) {
        keep_from = 0;
        in_call_ = true;
      }
      break;
    }
  }
  if (keep_from <= released_) return {};
  std::string out = text_.substr(released_, keep_from - released_);
  released_ = keep_from;
  return out;
}

ParsedToolCalls ToolCallStreamer::finish() {
  ParsedToolCalls parsed = parse_tool_calls(text_, format_, functions_);
  ParsedToolCalls rest;
  if (parsed.calls.empty()) {
    rest.content = text_.substr(released_);
  } else {
    rest.calls = std::move(parsed.calls);
    if (parsed.content.size() > released_) rest.content = parsed.content.substr(released_);
  }
  released_ = text_.size();
  return rest;
}

}  // namespace pagoda
