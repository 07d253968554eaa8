// Chat templates: turning a list of chat messages into prompt token ids.
//   llama2: <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] ...
//   chatml: <|im_start|>role\ncontent<|im_end|>\n ... <|im_start|>assistant\n
//   plain:  the contents joined by newlines (for base models such as stories260K)
// `auto` picks plain for llama2.c checkpoints (they carry no template).
// Free functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "engine/tokenizer.h"
#include "server/openai_protocol.h"

namespace pagoda {

enum class ChatTemplate { kLlama2, kChatMl, kPlain };

// "auto" | "llama2" | "chatml" | "plain" (auto resolves to plain today).
Result<ChatTemplate> parse_chat_template(const std::string& name);

// The prompt for `messages`, ending where the assistant's answer begins.
std::vector<int32_t> render_chat(const std::vector<ChatMessage>& messages, ChatTemplate tmpl,
                                 const Tokenizer& tokenizer);

// The same as text (BOS/EOS shown as <s> and </s>), for tests and logs.
std::string render_chat_text(const std::vector<ChatMessage>& messages, ChatTemplate tmpl);

}  // namespace pagoda
