// Chat templates: turning a list of chat messages into prompt token ids.
//
// `auto` uses the model's own template (Tokenizer::chat_template(), the
// Jinja source from tokenizer_config.json or chat_template.jinja), rendered
// by JinjaTemplate (chat/jinja.h) as transformers' apply_chat_template
// would, with messages (tool calls and tool results as the OpenAI API has
// them), tools, add_generation_prompt, bos_token and eos_token
// (chat/chat_context.h).
// If that template fails to parse or render (an unsupported construct, or
// raise_exception such as "roles must alternate"), the family is recognised
// from its text and the built-in rendering below is used; an unrecognised
// template, or none at all, gives plain.
//
// Built-in families (chosen by name in server.chat_template, or as the
// fallback above):
//   llama2:  <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] ...
//   llama3:  <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>...
//   chatml:  <|im_start|>role\ncontent<|im_end|>\n ... <|im_start|>assistant\n  (Qwen, SmolLM)
//   mistral: <s>[INST] user [/INST]answer</s>[INST] ...  (a system message is
//            put before the first user message, separated by a blank line)
//   zephyr:  <|user|>\ncontent</s>\n ... <|assistant|>\n  (TinyLlama chat)
//   plain:   the contents joined by newlines (base models such as stories260K)
// In the built-in families an assistant turn's tool calls follow its content
// as JSON, {"name": ..., "arguments": {...}}, one per line (chatml: each in
// <tool_call>...</tool_call>, as Qwen and Hermes write them); a tool result is
// a turn of role "tool" (llama3: "ipython"; mistral: [TOOL_RESULTS]...
// [/TOOL_RESULTS]; llama2: a user turn). The tools list itself is shown only
// by a model's own template.
//
// Rendered text becomes ids with special-token parsing on, so
// "<|im_start|>" or "<|eot_id|>" become their special ids. BOS: when the
// tokenizer adds one to ordinary text (encode(text, true) starts with
// bos_id()) and the rendered prompt does not already start with it, it is
// prepended; a template that writes bos_token itself gets exactly one.
// Free functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/chat_message.h"
#include "common/status.h"
#include "tokenizer/tokenizer.h"

namespace pagoda {

enum class ChatTemplate { kAuto, kPlain, kLlama2, kLlama3, kChatMl, kMistral, kZephyr };

// "auto" | "llama2" | "llama3" | "chatml" | "mistral" | "zephyr" | "plain".
Result<ChatTemplate> parse_chat_template(const std::string& name);
const char* chat_template_name(ChatTemplate tmpl);

// The built-in family a Jinja chat template belongs to, recognised by its
// marker strings ("<|start_header_id|>", "<|im_start|>", "<|user|>",
// "<<SYS>>", "[INST]"); kAuto when none matches.
ChatTemplate detect_chat_template_family(std::string_view jinja);

// The prompt text for `messages` as the tokenizer will see it (special
// tokens as text; a built-in family's BOS/EOS as in render_chat_text()),
// ending where the assistant's answer begins when `add_generation_prompt`.
// `*used` (optional) tells which rendering ran: kAuto for the model's own
// Jinja template, else the built-in family. `tools`: the request's tools
// array, or null when it has none.
std::string render_chat_prompt(const std::vector<ChatMessage>& messages, ChatTemplate tmpl, const Tokenizer& tokenizer,
                               bool add_generation_prompt = true, ChatTemplate* used = nullptr,
                               const nlohmann::ordered_json& tools = nullptr);

// The prompt ids (see the BOS rule above).
std::vector<int32_t> render_chat(const std::vector<ChatMessage>& messages, ChatTemplate tmpl,
                                 const Tokenizer& tokenizer, bool add_generation_prompt = true,
                                 const nlohmann::ordered_json& tools = nullptr);

// The model's own template (Tokenizer::chat_template()) rendered with its
// BOS and EOS text, with no fallback: InvalidArgument when the tokenizer has
// no template or it fails to parse or render (raise_exception included).
Result<std::string> render_model_chat_template(const std::vector<ChatMessage>& messages, const Tokenizer& tokenizer,
                                               bool add_generation_prompt, const nlohmann::ordered_json& tools);

// Any Jinja chat template `source` rendered as transformers would, with the
// given BOS and EOS text.
Result<std::string> render_jinja_chat_template(std::string_view source, const std::vector<ChatMessage>& messages,
                                               bool add_generation_prompt, const nlohmann::ordered_json& tools,
                                               const std::string& bos_token, const std::string& eos_token);

// A built-in family's text with no tokenizer (BOS/EOS written as <s> and
// </s>, or <|begin_of_text|> for llama3; the BOS that render_chat() adds
// for plain, chatml and zephyr is not shown), for tests and logs. kAuto
// renders as plain.
std::string render_chat_text(const std::vector<ChatMessage>& messages, ChatTemplate tmpl,
                             bool add_generation_prompt = true);

}  // namespace pagoda
