// ToolCallReply: turns the text of a chat reply whose request offered tools
// into OpenAI's shapes: `content` and `tool_calls[]` (each with an id, the
// function's name and its arguments as a JSON string), whole or as stream
// deltas (`delta.tool_calls[i]` with `index`; the id and name come first).
//
// With tool_choice `auto` the model's own format is parsed (ToolCallStreamer,
// chat/tool_call_parser.h; calls to functions not offered stay content, and
// with parallel_tool_calls false only the first call is kept); `required` output is the JSON array of
// {"name", "parameters"} the forced grammar allows; a named function's output
// is its arguments object, streamed as it is generated.
//
// One per response; not synchronized.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/tool_call_parser.h"
#include "server/tool_request.h"

namespace pagoda {

class ToolCallReply {
 public:
  ToolCallReply(const ToolRequest& request, ToolCallFormat format);

  // Consumes a text delta: returns the content to show now and appends the
  // tool-call deltas (elements of `delta.tool_calls`) to `*call_deltas`.
  std::string feed(std::string_view delta, std::vector<nlohmann::json>* call_deltas);
  // The end of the reply: the content not yet shown, and the last deltas.
  std::string finish(std::vector<nlohmann::json>* call_deltas);

  // After finish(): every call, as `message.tool_calls`.
  const std::vector<ChatToolCall>& calls() const { return calls_; }
  nlohmann::json calls_json() const;
  // After finish(): "tool_calls" when the model called tools of its own
  // choice (auto or required); a named call ends with "stop", as OpenAI's does.
  bool finished_with_calls() const { return !calls_.empty() && choice_ != ToolChoice::kNamed; }

 private:
  void add_call(ChatToolCall call, std::vector<nlohmann::json>* call_deltas);

  ToolChoice choice_;
  std::string function_;  // kNamed
  bool parallel_calls_;
  ToolCallStreamer streamer_;
  std::string forced_text_;  // kRequired: the JSON array so far
  std::vector<ChatToolCall> calls_;
};

// "call_" and 24 random letters and digits, as OpenAI's ids look.
std::string new_tool_call_id();

}  // namespace pagoda
