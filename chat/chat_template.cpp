#include "chat/chat_template.h"

#include "chat/chat_context.h"
#include "chat/jinja.h"

namespace pagoda {

Result<ChatTemplate> parse_chat_template(const std::string& name) {
  for (ChatTemplate t : {ChatTemplate::kAuto, ChatTemplate::kPlain, ChatTemplate::kLlama2, ChatTemplate::kLlama3,
                         ChatTemplate::kChatMl, ChatTemplate::kMistral, ChatTemplate::kZephyr})
    if (name == chat_template_name(t)) return t;
  return Status::invalid_argument("config key 'server.chat_template': got '" + name +
                                  "', expected one of auto, llama2, llama3, chatml, mistral, zephyr, plain");
}

const char* chat_template_name(ChatTemplate tmpl) {
  switch (tmpl) {
    case ChatTemplate::kAuto:
      return "auto";
    case ChatTemplate::kPlain:
      return "plain";
    case ChatTemplate::kLlama2:
      return "llama2";
    case ChatTemplate::kLlama3:
      return "llama3";
    case ChatTemplate::kChatMl:
      return "chatml";
    case ChatTemplate::kMistral:
      return "mistral";
    case ChatTemplate::kZephyr:
      return "zephyr";
  }
  return "plain";
}

ChatTemplate detect_chat_template_family(std::string_view jinja) {
  auto has = [&](std::string_view s) { return jinja.find(s) != std::string_view::npos; };
  if (has("<|start_header_id|>")) return ChatTemplate::kLlama3;
  if (has("<|im_start|>")) return ChatTemplate::kChatMl;
  if (has("<|user|>")) return ChatTemplate::kZephyr;
  if (has("<<SYS>>")) return ChatTemplate::kLlama2;
  if (has("[INST]")) return ChatTemplate::kMistral;
  return ChatTemplate::kAuto;
}

namespace {

// A built-in rendering: text, with BOS and EOS as separate items so that
// tokenizers without special-token text (llama2.c's) still get their ids.
struct Item {
  enum Kind { kText, kBos, kEos } kind;
  std::string text;
};

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n\r") - b + 1);
}

// An assistant turn's tool calls as JSON objects, one per line after its
// content (chatml: each in <tool_call> tags); other messages: the content.
std::string builtin_content(const ChatMessage& m, ChatTemplate tmpl) {
  std::string text = m.content_null ? "" : m.content;
  for (const ChatToolCall& c : m.tool_calls) {
    const JinjaValue call(
        JinjaDict{{"name", JinjaValue(c.name)}, {"arguments", chat_tool_arguments_value(c.arguments)}});
    if (!text.empty()) text += '\n';
    text += tmpl == ChatTemplate::kChatMl ? "<tool_call>\n" + call.to_json() + "\n</tool_call>" : call.to_json();
  }
  return text;
}

std::vector<Item> builtin(const std::vector<ChatMessage>& input, ChatTemplate tmpl, bool gen) {
  // Tool calls become content; tool results take the family's role for them.
  std::vector<ChatMessage> messages = input;
  for (ChatMessage& m : messages) {
    m.content = builtin_content(m, tmpl);
    if (m.role == "tool" && tmpl == ChatTemplate::kLlama3) m.role = "ipython";
  }
  std::vector<Item> out;
  auto text = [&](std::string s) { out.push_back({Item::kText, std::move(s)}); };
  switch (tmpl) {
    case ChatTemplate::kAuto:
    case ChatTemplate::kPlain: {
      std::string s;
      for (size_t i = 0; i < messages.size(); ++i) {
        if (i) s += '\n';
        s += messages[i].content;
      }
      text(s);
      break;
    }
    case ChatTemplate::kChatMl:
      for (const ChatMessage& m : messages) text("<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n");
      if (gen) text("<|im_start|>assistant\n");
      break;
    case ChatTemplate::kZephyr:
      for (const ChatMessage& m : messages) {
        text("<|" + m.role + "|>\n" + m.content);
        out.push_back({Item::kEos, ""});
        text("\n");
      }
      if (gen) text("<|assistant|>\n");
      break;
    case ChatTemplate::kLlama3:
      out.push_back({Item::kBos, ""});
      for (const ChatMessage& m : messages)
        text("<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>");
      if (gen) text("<|start_header_id|>assistant<|end_header_id|>\n\n");
      break;
    case ChatTemplate::kMistral: {
      std::string system;
      out.push_back({Item::kBos, ""});
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          if (!system.empty()) system += "\n\n";
          system += m.content;
        } else if (m.role == "tool") {
          text("[TOOL_RESULTS]" + m.content + "[/TOOL_RESULTS]");
        } else if (m.role == "assistant") {
          text(m.content);
          out.push_back({Item::kEos, ""});
        } else {
          text("[INST] " + (system.empty() ? "" : system + "\n\n") + m.content + " [/INST]");
          system.clear();
        }
      }
      break;
    }
    case ChatTemplate::kLlama2: {
      std::string system;
      size_t i = 0;
      if (!messages.empty() && messages[0].role == "system") system = messages[i++].content;
      bool first_user = true;
      for (; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (m.role == "assistant") {
          std::string answer = " ";
          answer += trim(m.content);
          answer += ' ';
          text(std::move(answer));
          out.push_back({Item::kEos, ""});
          continue;
        }
        std::string user = m.content;
        if (first_user && !system.empty()) user = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + user;
        first_user = false;
        out.push_back({Item::kBos, ""});
        text("[INST] " + trim(user) + " [/INST]");
      }
      if (first_user) {
        out.push_back({Item::kBos, ""});
        text("[INST] <<SYS>>\n" + system + "\n<</SYS>>\n\n [/INST]");
      }
      break;
    }
  }
  return out;
}

std::string items_text(const std::vector<Item>& items, ChatTemplate tmpl) {
  std::string s;
  for (const Item& it : items) {
    if (it.kind == Item::kText) s += it.text;
    else if (it.kind == Item::kBos) s += tmpl == ChatTemplate::kLlama3 ? "<|begin_of_text|>" : "<s>";
    else s += "</s>";
  }
  return s;
}

// Which built-in family to use when the model template is not used.
ChatTemplate fallback_family(ChatTemplate tmpl, const Tokenizer& tok) {
  if (tmpl != ChatTemplate::kAuto) return tmpl;
  const ChatTemplate f = detect_chat_template_family(tok.chat_template());
  return f == ChatTemplate::kAuto ? ChatTemplate::kPlain : f;
}

bool tokenizer_adds_bos(const Tokenizer& tok) {
  const auto ids = tok.encode("", true);
  return !ids.empty() && ids.front() == tok.bos_id();
}

}  // namespace

Result<std::string> render_jinja_chat_template(std::string_view source, const std::vector<ChatMessage>& messages,
                                               bool add_generation_prompt, const nlohmann::ordered_json& tools,
                                               const std::string& bos_token, const std::string& eos_token) {
  auto t = JinjaTemplate::parse(source);
  if (!t) return t.status();
  auto ctx = chat_template_context(messages, tools, add_generation_prompt, bos_token, eos_token);
  if (!ctx) return ctx.status();
  return t->render(*ctx);
}

Result<std::string> render_model_chat_template(const std::vector<ChatMessage>& messages, const Tokenizer& tok,
                                               bool add_generation_prompt, const nlohmann::ordered_json& tools) {
  if (tok.chat_template().empty()) return Status::invalid_argument("the model has no chat template");
  const std::string bos = tok.bos_id() >= 0 ? std::string(tok.token_text(tok.bos_id())) : "";
  const std::string eos = tok.eos_ids().empty() ? "" : std::string(tok.token_text(tok.eos_ids().front()));
  return render_jinja_chat_template(tok.chat_template(), messages, add_generation_prompt, tools, bos, eos);
}

std::string render_chat_prompt(const std::vector<ChatMessage>& messages, ChatTemplate tmpl, const Tokenizer& tokenizer,
                               bool add_generation_prompt, ChatTemplate* used, const nlohmann::ordered_json& tools) {
  if (tmpl == ChatTemplate::kAuto && !tokenizer.chat_template().empty()) {
    auto text = render_model_chat_template(messages, tokenizer, add_generation_prompt, tools);
    if (text) {
      if (used) *used = ChatTemplate::kAuto;
      return std::move(text).value();
    }
  }
  const ChatTemplate f = fallback_family(tmpl, tokenizer);
  if (used) *used = f;
  return items_text(builtin(messages, f, add_generation_prompt), f);
}

std::vector<int32_t> render_chat(const std::vector<ChatMessage>& messages, ChatTemplate tmpl,
                                 const Tokenizer& tokenizer, bool add_generation_prompt,
                                 const nlohmann::ordered_json& tools) {
  const EncodeOptions text_opts{/*add_bos=*/false, /*parse_special=*/true};
  std::vector<int32_t> ids;
  bool done = false;
  if (tmpl == ChatTemplate::kAuto && !tokenizer.chat_template().empty()) {
    auto text = render_model_chat_template(messages, tokenizer, add_generation_prompt, tools);
    if (text) {
      ids = tokenizer.encode_with(*text, text_opts);
      done = true;
    }
  }
  if (!done) {
    const std::vector<Item> items = builtin(messages, fallback_family(tmpl, tokenizer), add_generation_prompt);
    const int32_t bos = tokenizer.bos_id();
    const int32_t eos = tokenizer.eos_ids().empty() ? -1 : tokenizer.eos_ids().front();
    const std::string bos_text(bos >= 0 ? tokenizer.token_text(bos) : "");
    const std::string eos_text(eos >= 0 ? tokenizer.token_text(eos) : "");
    // When BOS/EOS are special-token text the tokenizer parses, encode the
    // whole prompt at once (text after a special token is then normalized
    // exactly as in the model's own template); else item by item.
    const bool as_text = (bos < 0 || tokenizer.encode_with(bos_text, text_opts) == std::vector<int32_t>{bos}) &&
                         (eos < 0 || tokenizer.encode_with(eos_text, text_opts) == std::vector<int32_t>{eos});
    std::string text;
    for (const Item& it : items) {
      if (as_text) {
        text += it.kind == Item::kText ? it.text : it.kind == Item::kBos ? bos_text : eos_text;
      } else if (it.kind == Item::kBos) {
        if (bos >= 0) ids.push_back(bos);
      } else if (it.kind == Item::kEos) {
        if (eos >= 0) ids.push_back(eos);
      } else {
        const auto part = tokenizer.encode_with(it.text, text_opts);
        ids.insert(ids.end(), part.begin(), part.end());
      }
    }
    if (as_text) ids = tokenizer.encode_with(text, text_opts);
  }
  if (tokenizer_adds_bos(tokenizer) && (ids.empty() || ids.front() != tokenizer.bos_id()))
    ids.insert(ids.begin(), tokenizer.bos_id());
  return ids;
}

std::string render_chat_text(const std::vector<ChatMessage>& messages, ChatTemplate tmpl, bool add_generation_prompt) {
  const ChatTemplate f = tmpl == ChatTemplate::kAuto ? ChatTemplate::kPlain : tmpl;
  return items_text(builtin(messages, f, add_generation_prompt), f);
}

}  // namespace pagoda
