// ChatMessage: one message of a chat conversation, as the OpenAI protocol
// (server/openai_protocol.h) parses it and the chat templates render it,
// and ChatToolCall: one function call an assistant turn made.
// Plain value types; not synchronized.
#pragma once

#include <string>
#include <vector>

namespace pagoda {

struct ChatToolCall {
  std::string id;         // "call_..." as the API carries it
  std::string name;       // the function's name
  std::string arguments;  // the arguments as JSON text (the API's string)
};

struct ChatMessage {
  std::string role;  // system | user | assistant | tool
  std::string content;
  bool content_null = false;             // content: null (an assistant turn that only calls tools)
  std::vector<ChatToolCall> tool_calls;  // assistant: the calls it made
  std::string tool_call_id;              // tool: the call this message answers
  std::string name;                      // optional; tool: the function's name when the client sends it
};

}  // namespace pagoda
