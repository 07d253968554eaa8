// ChatMessage: one message of a chat conversation, as the OpenAI protocol
// (server/openai_protocol.h) parses it and the chat templates render it.
// Plain value type; not synchronized.
#pragma once

#include <string>

namespace pagoda {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

}  // namespace pagoda
