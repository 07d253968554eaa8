#include "chat/chat_context.h"

#include "chat/jinja_json.h"

namespace pagoda {

JinjaValue chat_tool_arguments_value(const std::string& text) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return JinjaValue(text);
  auto v = jinja_from_json(j);
  return v ? std::move(v).value() : JinjaValue(text);
}

JinjaValue chat_message_value(const ChatMessage& m) {
  JinjaDict d{{"role", JinjaValue(m.role)}, {"content", m.content_null ? JinjaValue(nullptr) : JinjaValue(m.content)}};
  if (!m.tool_calls.empty()) {
    JinjaList calls;
    for (const ChatToolCall& c : m.tool_calls) {
      JinjaDict fn{{"name", JinjaValue(c.name)}, {"arguments", chat_tool_arguments_value(c.arguments)}};
      calls.emplace_back(
          JinjaDict{{"id", JinjaValue(c.id)}, {"type", JinjaValue("function")}, {"function", JinjaValue(fn)}});
    }
    d.emplace_back("tool_calls", JinjaValue(std::move(calls)));
  }
  if (!m.tool_call_id.empty()) d.emplace_back("tool_call_id", JinjaValue(m.tool_call_id));
  if (!m.name.empty()) d.emplace_back("name", JinjaValue(m.name));
  return JinjaValue(std::move(d));
}

Result<JinjaValue> chat_template_context(const std::vector<ChatMessage>& messages, const nlohmann::ordered_json& tools,
                                         bool add_generation_prompt, const std::string& bos_token,
                                         const std::string& eos_token) {
  JinjaList msgs;
  msgs.reserve(messages.size());
  for (const ChatMessage& m : messages) msgs.push_back(chat_message_value(m));
  JinjaValue tools_value(nullptr);
  if (!tools.is_null()) {
    if (!tools.is_array()) return Status::invalid_argument("'tools' must be an array");
    auto t = jinja_from_json(tools);
    if (!t) return Status::invalid_argument("'tools': " + t.status().message());
    tools_value = std::move(t).value();
  }
  return JinjaValue(JinjaDict{{"messages", JinjaValue(std::move(msgs))},
                              {"tools", tools_value},
                              {"documents", JinjaValue(nullptr)},
                              {"add_generation_prompt", JinjaValue(add_generation_prompt)},
                              {"bos_token", JinjaValue(bos_token)},
                              {"eos_token", JinjaValue(eos_token)}});
}

}  // namespace pagoda
