// The variables a chat template renders with, as Hugging Face transformers'
// apply_chat_template passes them (and vLLM before it): `messages` as the
// OpenAI API's dicts, `tools`, `documents`, `add_generation_prompt`,
// `bos_token`, `eos_token`. Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/chat_message.h"
#include "chat/jinja_value.h"
#include "common/status.h"

namespace pagoda {

// One message as a client sends it, with only the keys that are set:
// role, content (none when content_null), tool_calls (assistant: a list of
// {"id", "type": "function", "function": {"name", "arguments"}} where the
// arguments JSON text is parsed into an object, as vLLM does, or kept as the
// string when it is not JSON), tool_call_id and name (when not empty).
JinjaValue chat_message_value(const ChatMessage& m);

// A tool call's arguments JSON text as that object (or the text when it is
// not JSON).
JinjaValue chat_tool_arguments_value(const std::string& arguments);

// The whole context. `tools` is the request's tools array (ordered JSON, key
// order kept); null (no tools) renders as none, as transformers passes
// tools=None; `documents` is always none. InvalidArgument if `tools` is
// neither null nor an array, or nests too deep.
Result<JinjaValue> chat_template_context(const std::vector<ChatMessage>& messages, const nlohmann::ordered_json& tools,
                                         bool add_generation_prompt, const std::string& bos_token,
                                         const std::string& eos_token);

}  // namespace pagoda
