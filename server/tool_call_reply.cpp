// ToolCallReply (see tool_call_reply.h).
#include "server/tool_call_reply.h"

#include <random>
#include <utility>

namespace pagoda {

using nlohmann::json;

std::string new_tool_call_id() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kAlphabet[pick(rng)];
  return id;
}

ToolCallReply::ToolCallReply(const ToolRequest& request, ToolCallFormat format)
    : choice_(request.choice), function_(request.function), parallel_calls_(request.parallel_calls),
      streamer_(format, request.function_names()) {}

void ToolCallReply::add_call(ChatToolCall call, std::vector<json>* call_deltas) {
  call.id = new_tool_call_id();
  const size_t index = calls_.size();
  call_deltas->push_back({{"index", index},
                          {"id", call.id},
                          {"type", "function"},
                          {"function", {{"name", call.name}, {"arguments", ""}}}});
  if (!call.arguments.empty())
    call_deltas->push_back({{"index", index}, {"function", {{"arguments", call.arguments}}}});
  calls_.push_back(std::move(call));
}

std::string ToolCallReply::feed(std::string_view delta, std::vector<json>* call_deltas) {
  switch (choice_) {
    case ToolChoice::kNamed:
      // The reply is the arguments: its pieces are streamed as they come.
      if (calls_.empty()) add_call({"", function_, ""}, call_deltas);
      if (!delta.empty()) {
        calls_.front().arguments += delta;
        call_deltas->push_back({{"index", 0}, {"function", {{"arguments", std::string(delta)}}}});
      }
      return {};
    case ToolChoice::kRequired:
      forced_text_ += delta;
      return {};
    case ToolChoice::kAuto:
    case ToolChoice::kNone:
      break;
  }
  return streamer_.feed(delta);
}

std::string ToolCallReply::finish(std::vector<json>* call_deltas) {
  switch (choice_) {
    case ToolChoice::kNamed:
      if (calls_.empty()) add_call({"", function_, ""}, call_deltas);
      return {};
    case ToolChoice::kRequired: {
      ParsedToolCalls parsed = parse_tool_calls(forced_text_, ToolCallFormat::kJson);
      // Cut short (max_tokens): what was generated stays visible as content.
      if (parsed.calls.empty()) return forced_text_;
      for (ChatToolCall& call : parsed.calls) add_call(std::move(call), call_deltas);
      return {};
    }
    case ToolChoice::kAuto:
    case ToolChoice::kNone:
      break;
  }
  ParsedToolCalls rest = streamer_.finish();
  if (!parallel_calls_ && rest.calls.size() > 1) rest.calls.resize(1);  // parallel_tool_calls: false
  for (ChatToolCall& call : rest.calls) add_call(std::move(call), call_deltas);
  return std::move(rest.content);
}

json ToolCallReply::calls_json() const {
  json out = json::array();
  for (const ChatToolCall& call : calls_)
    out.push_back(
        {{"id", call.id}, {"type", "function"}, {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
  return out;
}

}  // namespace pagoda
