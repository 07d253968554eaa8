// `pagoda chat-template render (--model DIR | --template FILE [--bos-token S]
// [--eos-token S]) [--fallback]`: read a chat request body (JSON: messages,
// optional tools, add_generation_prompt default true) on stdin and print the
// prompt text the chat template makes of it, exactly, with nothing added.
// --model uses the model's own template (loaded as `serve` loads it), with
// the tokenizer's BOS and EOS text; --fallback prints what the server would
// send to the model instead, a built-in family's rendering when the model's
// template fails (which one ran goes to stderr).
// Exit 0; 1 when the template fails to render (raise_exception, an
// unsupported construct); 2 for bad input or flags.
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/chat_message.h"
#include "chat/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace pagoda::cli {

namespace {

struct ChatTemplateFlags {
  std::string model;
  std::string template_file;
  std::string bos_token;
  std::string eos_token;
  bool fallback = false;
};

// A chat request body as the OpenAI API has it.
struct ChatRequestBody {
  std::vector<ChatMessage> messages;
  nlohmann::ordered_json tools;  // null when absent
  bool add_generation_prompt = true;
};

Status bad(const std::string& what) { return Status::invalid_argument(what); }

// content: a string, null, or a list of {"type": "text", "text": ...} parts
// (joined with newlines, as vLLM joins them).
Status parse_content(const nlohmann::ordered_json& c, const std::string& where, ChatMessage* m) {
  if (c.is_null()) {
    m->content_null = true;
    return Status::ok();
  }
  if (c.is_string()) {
    m->content = c.get<std::string>();
    return Status::ok();
  }
  if (!c.is_array()) return bad(where + ".content: expected a string, null or a list of text parts");
  for (size_t i = 0; i < c.size(); ++i) {
    const auto& part = c[i];
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      return bad(where + ".content[" + std::to_string(i) + "]: expected {\"type\": \"text\", \"text\": \"...\"}");
    if (i) m->content += '\n';
    m->content += part["text"].get<std::string>();
  }
  return Status::ok();
}

Status parse_tool_call(const nlohmann::ordered_json& c, const std::string& where, ChatToolCall* call) {
  if (!c.is_object()) return bad(where + ": expected an object");
  if (c.contains("id") && !c["id"].is_string()) return bad(where + ".id: expected a string");
  if (c.contains("id")) call->id = c["id"].get<std::string>();
  if (!c.contains("function") || !c["function"].is_object()) return bad(where + ".function: expected an object");
  const auto& fn = c["function"];
  if (!fn.contains("name") || !fn["name"].is_string()) return bad(where + ".function.name: expected a string");
  call->name = fn["name"].get<std::string>();
  if (!fn.contains("arguments")) return bad(where + ".function.arguments: missing");
  const auto& args = fn["arguments"];
  call->arguments = args.is_string() ? args.get<std::string>() : args.dump();
  return Status::ok();
}

Status parse_message(const nlohmann::ordered_json& j, const std::string& where, ChatMessage* m) {
  if (!j.is_object()) return bad(where + ": expected an object");
  if (!j.contains("role") || !j["role"].is_string()) return bad(where + ".role: expected a string");
  m->role = j["role"].get<std::string>();
  Status s = parse_content(j.contains("content") ? j["content"] : nlohmann::ordered_json(), where, m);
  if (!s.is_ok()) return s;
  if (j.contains("tool_calls") && !j["tool_calls"].is_null()) {
    if (!j["tool_calls"].is_array()) return bad(where + ".tool_calls: expected a list");
    for (size_t i = 0; i < j["tool_calls"].size(); ++i) {
      ChatToolCall call;
      s = parse_tool_call(j["tool_calls"][i], where + ".tool_calls[" + std::to_string(i) + "]", &call);
      if (!s.is_ok()) return s;
      m->tool_calls.push_back(std::move(call));
    }
  }
  for (const char* key : {"tool_call_id", "name"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    if (!j[key].is_string()) return bad(where + "." + key + ": expected a string");
    (std::string(key) == "name" ? m->name : m->tool_call_id) = j[key].get<std::string>();
  }
  return Status::ok();
}

Result<ChatRequestBody> parse_body(const std::string& text) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const std::exception& e) {
    return bad(std::string("stdin: not JSON (") + e.what() + ")");
  }
  if (!j.is_object()) return bad("stdin: expected a JSON object (a chat request body)");
  if (!j.contains("messages") || !j["messages"].is_array()) return bad("messages: expected a list");
  ChatRequestBody body;
  for (size_t i = 0; i < j["messages"].size(); ++i) {
    ChatMessage m;
    Status s = parse_message(j["messages"][i], "messages[" + std::to_string(i) + "]", &m);
    if (!s.is_ok()) return s;
    body.messages.push_back(std::move(m));
  }
  if (j.contains("tools") && !j["tools"].is_null()) {
    if (!j["tools"].is_array()) return bad("tools: expected a list");
    body.tools = j["tools"];
  }
  if (j.contains("add_generation_prompt")) {
    if (!j["add_generation_prompt"].is_boolean()) return bad("add_generation_prompt: expected true or false");
    body.add_generation_prompt = j["add_generation_prompt"].get<bool>();
  }
  return body;
}

int run_render(const ChatTemplateFlags& f) {
  if (f.model.empty() == f.template_file.empty()) {
    print_error("chat-template render: give one of --model DIR or --template FILE");
    return kExitConfigError;
  }
  if (!f.model.empty() && (!f.bos_token.empty() || !f.eos_token.empty())) {
    print_error("chat-template render: --bos-token and --eos-token go with --template (--model uses its tokenizer's)");
    return kExitConfigError;
  }
  if (f.fallback && f.model.empty()) {
    print_error("chat-template render: --fallback goes with --model");
    return kExitConfigError;
  }
  const std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  auto body = parse_body(input);
  if (!body) {
    print_error(body.status().message());
    return kExitConfigError;
  }
  Result<std::string> text = Status::invalid_argument("unset");
  if (!f.template_file.empty()) {
    std::ifstream in(f.template_file, std::ios::binary);
    if (!in) {
      print_error("--template: cannot read '" + f.template_file + "'");
      return kExitConfigError;
    }
    std::stringstream source;
    source << in.rdbuf();
    text = render_jinja_chat_template(source.str(), body->messages, body->add_generation_prompt, body->tools,
                                      f.bos_token, f.eos_token);
  } else {
    auto tok = load_tokenizer(f.model);
    if (!tok) {
      print_error("--model: " + tok.status().message());
      return kExitConfigError;
    }
    if (f.fallback) {
      ChatTemplate used = ChatTemplate::kAuto;
      text = render_chat_prompt(body->messages, ChatTemplate::kAuto, **tok, body->add_generation_prompt, &used,
                                body->tools);
      std::cerr << "pagoda: rendered with "
                << (used == ChatTemplate::kAuto ? std::string("the model's own template")
                                                : std::string("the built-in '") + chat_template_name(used) + "' family")
                << "\n";
    } else {
      text = render_model_chat_template(body->messages, **tok, body->add_generation_prompt, body->tools);
    }
  }
  if (!text) {
    print_error(text.status().message());
    return kExitFailure;
  }
  std::cout << *text << std::flush;
  return kExitOk;
}

}  // namespace

void register_chat_template(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("chat-template", "Chat templates: render a chat request as the model's prompt");
  cmd->require_subcommand(1);
  auto* render = cmd->add_subcommand(
      "render",
      "Read a chat request body (JSON: messages, optional tools, add_generation_prompt) on stdin and print the "
      "prompt text exactly (exit 1: the template failed; 2: bad input)");
  auto f = std::make_shared<ChatTemplateFlags>();
  render->add_option("--model", f->model, "A model directory, GGUF file or tokenizer: its own chat template");
  render->add_option("--template", f->template_file, "A Jinja chat template file");
  render->add_option("--bos-token", f->bos_token, "bos_token's text (with --template)");
  render->add_option("--eos-token", f->eos_token, "eos_token's text (with --template)");
  render->add_flag(
      "--fallback", f->fallback,
      "With --model: what the server sends, a built-in family's rendering when the model's template fails");
  render->callback([f, exit_code] { *exit_code = run_render(*f); });
}

}  // namespace pagoda::cli
