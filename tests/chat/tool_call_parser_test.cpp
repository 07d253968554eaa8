// Tool-call parsing: each format's calls, content before them, text that is
// not a call, and streaming that never shows call markup.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "chat/tool_call_parser.h"

using pagoda::ParsedToolCalls;
using pagoda::ToolCallFormat;

namespace {

// Feeds `text` in pieces of `step` bytes; returns the released content and the final parse.
ParsedToolCalls stream(const std::string& text, ToolCallFormat format, size_t step, std::string* shown) {
  pagoda::ToolCallStreamer streamer(format);
  for (size_t i = 0; i < text.size(); i += step) *shown += streamer.feed(text.substr(i, step));
  ParsedToolCalls rest = streamer.finish();
  *shown += rest.content;
  return rest;
}

}  // namespace

TEST_CASE("tool calls: hermes blocks with content before them") {
  const std::string text =
      "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": "
      "\"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  const ParsedToolCalls p = pagoda::parse_tool_calls(text, ToolCallFormat::kHermes);
  CHECK(p.content == "Let me look.\n");
  REQUIRE(p.calls.size() == 2);
  CHECK(p.calls[0].name == "get_weather");
  CHECK(p.calls[0].arguments == R"({"city":"Paris","unit":"c"})");  // key order kept
  CHECK(p.calls[1].name == "get_time");
  CHECK(p.calls[1].arguments == "{}");
  // Streamed a byte at a time and in odd pieces: the content shown is only the text before the calls.
  for (size_t step : {1, 3, 7, 1000}) {
    std::string shown;
    const ParsedToolCalls s = stream(text, ToolCallFormat::kHermes, step, &shown);
    CHECK(shown == "Let me look.\n");
    CHECK(s.calls.size() == 2);
  }
}

TEST_CASE("tool calls: a hermes block cut short or malformed") {
  // max_tokens before the closing tag: the call is still complete JSON.
  auto cut =
      pagoda::parse_tool_calls("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}", ToolCallFormat::kHermes);
  REQUIRE(cut.calls.size() == 1);
  CHECK(cut.calls[0].arguments == R"({"x":1})");
  // Broken JSON: the whole text is content, nothing invented.
  const std::string broken = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": </tool_call>";
  auto bad = pagoda::parse_tool_calls(broken, ToolCallFormat::kHermes);
  CHECK(bad.calls.empty());
  CHECK(bad.content == broken);
  std::string shown;
  stream(broken, ToolCallFormat::kHermes, 2, &shown);
  CHECK(shown == broken);
  // No name: not a call.
  CHECK(pagoda::parse_tool_calls("<tool_call>{\"arguments\": {}}</tool_call>", ToolCallFormat::kHermes).calls.empty());
  // Text after the last block: not a clean call, kept as content.
  CHECK(pagoda::parse_tool_calls("<tool_call>{\"name\": \"f\"}</tool_call> and more", ToolCallFormat::kHermes)
            .calls.empty());
  // A '<' that is not a marker is released once it cannot be one.
  std::string lt;
  stream("a < b <tool", ToolCallFormat::kHermes, 1, &lt);
  CHECK(lt == "a < b <tool");
}

TEST_CASE("tool calls: llama 3 JSON") {
  auto one = pagoda::parse_tool_calls(R"({"name": "get_weather", "parameters": {"city": "Oslo"}})",
                                      ToolCallFormat::kLlama3Json);
  REQUIRE(one.calls.size() == 1);
  CHECK(one.calls[0].name == "get_weather");
  CHECK(one.calls[0].arguments == R"({"city":"Oslo"})");
  CHECK(one.content.empty());
  auto tagged = pagoda::parse_tool_calls(
      "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"s\": \"x;}\"}}",
      ToolCallFormat::kLlama3Json);
  REQUIRE(tagged.calls.size() == 2);
  CHECK(tagged.calls[1].name == "b");
  CHECK(tagged.calls[1].arguments == R"({"s":"x;}"})");
  // Prose is content, streamed as it comes.
  std::string shown;
  auto prose = stream("The weather is {unknown}.", ToolCallFormat::kLlama3Json, 4, &shown);
  CHECK(prose.calls.empty());
  CHECK(shown == "The weather is {unknown}.");
  // A call streams nothing as content.
  std::string none;
  auto streamed = stream("  {\"name\": \"a\", \"parameters\": {\"k\": [1, 2]}}", ToolCallFormat::kLlama3Json, 3, &none);
  CHECK(none.empty());
  REQUIRE(streamed.calls.size() == 1);
  CHECK(streamed.calls[0].arguments == R"({"k":[1,2]})");
}

TEST_CASE("tool calls: mistral with and without its marker") {
  auto marked = pagoda::parse_tool_calls(
      R"(Sure. [TOOL_CALLS][{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {"b": "2"}}])",
      ToolCallFormat::kMistral);
  CHECK(marked.content == "Sure. ");
  REQUIRE(marked.calls.size() == 2);
  CHECK(marked.calls[1].arguments == R"({"b":"2"})");
  auto bare = pagoda::parse_tool_calls(R"([{"name": "f", "arguments": {}}])", ToolCallFormat::kMistral);
  REQUIRE(bare.calls.size() == 1);
  std::string shown;
  stream(R"(Sure. [TOOL_CALLS][{"name": "f", "arguments": {"a": 1}}])", ToolCallFormat::kMistral, 2, &shown);
  CHECK(shown == "Sure. ");
}

TEST_CASE("tool calls: the generic JSON fallback") {
  auto obj = pagoda::parse_tool_calls(R"({"name": "f", "arguments": "{\"q\": 1}"})", ToolCallFormat::kJson);
  REQUIRE(obj.calls.size() == 1);
  CHECK(obj.calls[0].arguments == R"({"q": 1})");  // a string stays as written
  auto arr = pagoda::parse_tool_calls(R"([{"name": "f", "parameters": {}}, {"name": "g"}])", ToolCallFormat::kJson);
  REQUIRE(arr.calls.size() == 2);
  CHECK(arr.calls[1].arguments == "{}");
  CHECK(pagoda::parse_tool_calls(R"({"answer": 42})", ToolCallFormat::kJson).calls.empty());
  CHECK(pagoda::parse_tool_calls("[]", ToolCallFormat::kJson).calls.empty());
  CHECK(pagoda::parse_tool_calls("plain text", ToolCallFormat::kJson).content == "plain text");
  // A JSON answer that happens to have a "name" is not a call to a function the request did not offer.
  const std::string person = R"({"name": "Alice", "age": 30})";
  auto answer = pagoda::parse_tool_calls(person, ToolCallFormat::kJson, {"get_weather"});
  CHECK(answer.calls.empty());
  CHECK(answer.content == person);
  CHECK(pagoda::parse_tool_calls(R"({"name": "get_weather", "arguments": {}})", ToolCallFormat::kJson, {"get_weather"})
            .calls.size() == 1);
  std::string shown;
  pagoda::ToolCallStreamer streamer(ToolCallFormat::kJson, {"get_weather"});
  shown += streamer.feed(person);
  auto rest = streamer.finish();
  CHECK(rest.calls.empty());
  CHECK(shown + rest.content == person);
}

TEST_CASE("tool calls: formats by name and from templates") {
  CHECK(*pagoda::parse_tool_call_format("hermes") == ToolCallFormat::kHermes);
  CHECK_FALSE(pagoda::parse_tool_call_format("pythonic").is_ok());
  CHECK(pagoda::detect_tool_call_format("... <tool_call>\n{{ tool_call | tojson }}</tool_call>") ==
        ToolCallFormat::kHermes);
  CHECK(pagoda::detect_tool_call_format("{{ '[TOOL_CALLS]' }}") == ToolCallFormat::kMistral);
  CHECK(pagoda::detect_tool_call_format(
            "<|start_header_id|>{{ '{\"name\": function name, \"parameters\": dictionary}' }}") ==
        ToolCallFormat::kLlama3Json);
  CHECK(pagoda::detect_tool_call_format("{{ messages }}") == ToolCallFormat::kJson);
}
