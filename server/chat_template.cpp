#include "server/chat_template.h"

namespace pagoda {

Result<ChatTemplate> parse_chat_template(const std::string& name) {
  if (name == "llama2") return ChatTemplate::kLlama2;
  if (name == "chatml") return ChatTemplate::kChatMl;
  if (name == "plain" || name == "auto") return ChatTemplate::kPlain;
  return Status::invalid_argument("config key 'server.chat_template': got '" + name +
                                  "', expected one of auto, llama2, chatml, plain");
}

namespace {

// A rendered piece: text, optionally preceded by BOS or followed by EOS.
struct Segment {
  bool bos = false;
  std::string text;
  bool eos = false;
};

std::vector<Segment> segments(const std::vector<ChatMessage>& messages, ChatTemplate tmpl) {
  std::vector<Segment> out;
  switch (tmpl) {
    case ChatTemplate::kPlain: {
      std::string text;
      for (size_t i = 0; i < messages.size(); ++i) text += (i ? "\n" : "") + messages[i].content;
      out.push_back({true, text, false});
      break;
    }
    case ChatTemplate::kChatMl: {
      std::string text;
      for (const ChatMessage& m : messages) text += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      text += "<|im_start|>assistant\n";
      out.push_back({true, text, false});
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
          out.push_back({false, " " + m.content + " ", true});
          continue;
        }
        std::string user = m.content;
        if (first_user && !system.empty()) user = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + user;
        first_user = false;
        out.push_back({true, "[INST] " + user + " [/INST]", false});
      }
      if (out.empty()) out.push_back({true, "[INST] <<SYS>>\n" + system + "\n<</SYS>>\n\n [/INST]", false});
      break;
    }
  }
  return out;
}

}  // namespace

std::vector<int32_t> render_chat(const std::vector<ChatMessage>& messages, ChatTemplate tmpl,
                                 const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  for (const Segment& s : segments(messages, tmpl)) {
    // encode() adds BOS itself when asked; continuation segments have none.
    std::vector<int32_t> part = tokenizer.encode(s.text, s.bos);
    ids.insert(ids.end(), part.begin(), part.end());
    if (s.eos && !tokenizer.eos_ids().empty()) ids.push_back(tokenizer.eos_ids().front());
  }
  return ids;
}

std::string render_chat_text(const std::vector<ChatMessage>& messages, ChatTemplate tmpl) {
  std::string text;
  for (const Segment& s : segments(messages, tmpl)) text += (s.bos ? "<s>" : "") + s.text + (s.eos ? "</s>" : "");
  return text;
}

}  // namespace pagoda
