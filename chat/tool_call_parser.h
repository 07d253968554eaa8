// Tool-call parsing: finding the function calls a model wrote in its output
// text, in the format its chat template taught it.
//
// Formats:
//   hermes:      <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
//                (Hermes 2 Pro / 3, Qwen2.5; several blocks for parallel calls)
//   llama3_json: {"name": "f", "parameters": {...}} as the whole output,
//                optionally after <|python_tag|>; several joined by ';'
//   mistral:     [TOOL_CALLS][{"name": "f", "arguments": {...}}, ...]
//                (the marker is a control token that decoding may drop, so a
//                bare JSON array of calls at the start is one too)
//   json:        the generic fallback: the output is one call object
//                ({"name", "arguments" or "parameters"}) or an array of them
// Text before the first call stays content; a call that is not valid JSON,
// or that names a function the request did not offer, leaves the whole
// output as content (nothing is invented).
//
// ToolCallStreamer holds back, while a reply streams, the text that may be
// the start of a call, so content deltas never show call markup.
//
// Free functions are pure (thread-safe); a ToolCallStreamer belongs to one
// response and is not synchronized.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/chat_message.h"
#include "common/status.h"

namespace pagoda {

enum class ToolCallFormat { kHermes, kLlama3Json, kMistral, kJson };

// "hermes" | "llama3_json" | "mistral" | "json".
Result<ToolCallFormat> parse_tool_call_format(const std::string& name);
const char* tool_call_format_name(ToolCallFormat format);

// The format a chat template's tool instructions ask for, recognised by its
// marker strings; kJson when none is recognised.
ToolCallFormat detect_tool_call_format(std::string_view template_source);

// A reply split into its content and its calls. Call ids are left empty
// (the server assigns them).
struct ParsedToolCalls {
  std::string content;
  std::vector<ChatToolCall> calls;
};
// `functions`: the names the request offered; empty accepts any name.
ParsedToolCalls parse_tool_calls(std::string_view text, ToolCallFormat format,
                                 const std::set<std::string>& functions = {});

// Splits a streamed reply: content that is certainly not part of a call is
// released as it arrives; from the first possible call marker on, the text
// is held until finish() parses it.
class ToolCallStreamer {
 public:
  explicit ToolCallStreamer(ToolCallFormat format, std::set<std::string> functions = {})
      : format_(format), functions_(std::move(functions)) {}

  // Appends a delta; returns the content that can be shown now.
  std::string feed(std::string_view delta);
  // The rest of the reply: content not yet released and the calls.
  ParsedToolCalls finish();

 private:
  ToolCallFormat format_;
  std::set<std::string> functions_;  // offered names (empty: any)
  std::string text_;                 // the whole reply so far
  size_t released_ = 0;              // bytes of text_ already returned as content
  bool in_call_ = false;             // a call marker was seen: hold everything
};

}  // namespace pagoda
