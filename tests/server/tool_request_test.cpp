// Tool-calling request fields and replies: tools and tool_choice are
// validated with errors naming the field; a forced call's grammar admits
// exactly the calls the tools allow; a reply becomes content and
// tool_calls, whole or streamed.
#include <catch2/catch.hpp>

#include "server/tool_call_reply.h"
#include "server/tool_request.h"
#include "structured/grammar_automaton.h"
#include "structured/grammar_spec.h"

using namespace pagoda;
using Json = nlohmann::ordered_json;

namespace {

const char* kTools = R"("tools":[
  {"type":"function","function":{"name":"get_weather","description":"Weather in a city",
   "parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},
                 "required":["city","unit"],"additionalProperties":false}}},
  {"type":"function","function":{"name":"get_time","parameters":{"$defs":{"zone":{"type":"string","maxLength":8}},
   "type":"object","properties":{"zone":{"$ref":"#/$defs/zone"}},"required":["zone"],"additionalProperties":false}}}])";

Result<std::optional<ToolRequest>> parse(const std::string& rest) {
  std::string body = "{";
  body += kTools;
  if (!rest.empty()) {
    body += ',';
    body += rest;
  }
  body += '}';
  return parse_tool_request(Json::parse(body));
}

std::string error_field(const std::string& body) {
  auto r = parse_tool_request(Json::parse(body));
  REQUIRE_FALSE(r.is_ok());
  return r.status().field();
}

structured::Grammar forced_grammar(const ToolRequest& request) {
  auto spec = forced_tool_call_grammar(request);
  REQUIRE(spec.has_value());
  auto grammar = structured::compile_grammar_spec(*spec);
  REQUIRE(grammar.is_ok());
  return std::move(grammar).value();
}

}  // namespace

TEST_CASE("tools: tool_choice and its defaults") {
  auto none = parse_tool_request(Json::parse(R"({"messages":[]})"));
  REQUIRE(none.is_ok());
  CHECK_FALSE(none.value().has_value());
  auto plain = parse("");
  REQUIRE(plain.value().has_value());
  CHECK(plain.value()->choice == ToolChoice::kAuto);
  CHECK(plain.value()->tools.size() == 2);
  CHECK(plain.value()->tools[0]["function"].begin().key() == "name");  // key order kept
  CHECK(parse(R"("tool_choice":"none")").value()->choice == ToolChoice::kNone);
  CHECK(parse(R"("tool_choice":"required")").value()->choice == ToolChoice::kRequired);
  auto named = parse(R"("tool_choice":{"type":"function","function":{"name":"get_time"}},"parallel_tool_calls":false)");
  REQUIRE(named.is_ok());
  CHECK(named.value()->choice == ToolChoice::kNamed);
  CHECK(named.value()->function == "get_time");
  CHECK_FALSE(named.value()->parallel_calls);
}

TEST_CASE("tools: bad tools and tool_choice name the field") {
  CHECK(error_field(R"({"tools":{}})") == "tools");
  CHECK(error_field(R"({"tools":[{"type":"retrieval"}]})") == "tools");
  CHECK(error_field(R"({"tools":[{"type":"function","function":{"name":"has space"}}]})") == "tools");
  CHECK(error_field(R"({"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}]})") == "tools");
  CHECK(error_field(
            R"({"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]})") ==
        "tools");
  CHECK(error_field(R"({"tool_choice":"required"})") == "tool_choice");
  CHECK(error_field(std::string("{") + kTools + R"(,"tool_choice":"sometimes"})") == "tool_choice");
  CHECK(error_field(std::string("{") + kTools +
                    R"(,"tool_choice":{"type":"function","function":{"name":"get_stock"}}})") == "tool_choice");
  CHECK(error_field(std::string("{") + kTools + R"(,"parallel_tool_calls":"yes"})") == "parallel_tool_calls");
  CHECK(error_field(R"({"functions":[{"name":"f"}]})") == "functions");
}

TEST_CASE("tools: a named call's grammar is the function's parameters") {
  auto request = parse(R"("tool_choice":{"type":"function","function":{"name":"get_weather"}})");
  REQUIRE(request.is_ok());
  const structured::Grammar g = forced_grammar(*request.value());
  CHECK(structured::grammar_matches(g, R"({"city":"Paris","unit":"c"})"));
  CHECK_FALSE(structured::grammar_matches(g, R"({"city":"Paris"})"));
  CHECK_FALSE(structured::grammar_matches(g, R"({"city":"Paris","unit":"k"})"));
  CHECK_FALSE(forced_tool_call_grammar(*parse("").value()).has_value());  // auto: nothing forced
}

TEST_CASE("tools: a required call's grammar is an array of calls to the tools") {
  auto request = parse(R"("tool_choice":"required")");
  REQUIRE(request.is_ok());
  const structured::Grammar g = forced_grammar(*request.value());
  CHECK(structured::grammar_matches(g, R"([{"name":"get_weather","parameters":{"city":"Oslo","unit":"f"}}])"));
  // The $ref inside get_time's parameters still resolves after embedding.
  CHECK(structured::grammar_matches(
      g,
      R"([{"name":"get_time","parameters":{"zone":"UTC"}},{"name":"get_weather","parameters":{"city":"A","unit":"c"}}])"));
  CHECK_FALSE(structured::grammar_matches(g, R"([{"name":"get_time","parameters":{"zone":"much too long"}}])"));
  CHECK_FALSE(structured::grammar_matches(g, R"([])"));
  CHECK_FALSE(structured::grammar_matches(g, R"([{"name":"get_stock","parameters":{}}])"));
  CHECK_FALSE(structured::grammar_matches(g, R"([{"name":"get_time","parameters":{"city":"x"}}])"));
  // parallel_tool_calls false: exactly one call.
  auto single = parse(R"("tool_choice":"required","parallel_tool_calls":false)");
  const structured::Grammar one = forced_grammar(*single.value());
  CHECK(structured::grammar_matches(one, R"([{"name":"get_time","parameters":{"zone":"UTC"}}])"));
  CHECK_FALSE(structured::grammar_matches(
      one, R"([{"name":"get_time","parameters":{"zone":"UTC"}},{"name":"get_time","parameters":{"zone":"UTC"}}])"));
}

TEST_CASE("tools: references inside a required call's schemas are rebased, data is not") {
  auto request = parse_tool_request(Json::parse(R"({"tool_choice":"required","tools":[
    {"type":"function","function":{"name":"f","parameters":{"$defs":{"id":{"type":"string","maxLength":3}},
      "type":"object","properties":{"default":{"$ref":"#/$defs/id"},"tag":{"enum":["#/$defs/id"]}},
      "required":["default","tag"],"additionalProperties":false}}}]})"));
  REQUIRE(request.is_ok());
  auto spec = forced_tool_call_grammar(*request.value());
  REQUIRE(spec.has_value());
  const Json& props = spec->schema["items"]["anyOf"][0]["properties"]["parameters"]["properties"];
  CHECK(props["default"]["$ref"] == "#/items/anyOf/0/properties/parameters/$defs/id");  // a property named "default"
  CHECK(props["tag"]["enum"][0] == "#/$defs/id");                                       // data kept as sent
  const structured::Grammar g = forced_grammar(*request.value());
  CHECK(structured::grammar_matches(g, R"([{"name":"f","parameters":{"default":"abc","tag":"#/$defs/id"}}])"));
  CHECK_FALSE(structured::grammar_matches(g, R"([{"name":"f","parameters":{"default":"abcd","tag":"#/$defs/id"}}])"));
}

TEST_CASE("tools: replies become content and tool_calls") {
  SECTION("auto: the model's format parsed, finish reason tool_calls") {
    ToolCallReply reply(*parse("").value(), ToolCallFormat::kHermes);
    std::vector<nlohmann::json> deltas;
    std::string shown = reply.feed("Checking.<tool_", &deltas);
    shown += reply.feed("call>{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}</tool_call>", &deltas);
    CHECK(deltas.empty());
    shown += reply.finish(&deltas);
    CHECK(shown == "Checking.");
    REQUIRE(reply.calls().size() == 1);
    CHECK(reply.finished_with_calls());
    CHECK(reply.calls()[0].id.rfind("call_", 0) == 0);
    CHECK(reply.calls()[0].id.size() == 29);
    REQUIRE(deltas.size() == 2);  // id and name first, then the arguments
    CHECK(deltas[0]["index"] == 0);
    CHECK(deltas[0]["function"]["name"] == "get_time");
    CHECK(deltas[0]["function"]["arguments"] == "");
    CHECK(deltas[1]["function"]["arguments"] == R"({"zone":"UTC"})");
    const nlohmann::json calls = reply.calls_json();
    CHECK(calls[0]["type"] == "function");
    CHECK(calls[0]["id"] == deltas[0]["id"]);
  }
  SECTION("named: the arguments stream as generated and the call ends with stop") {
    ToolCallReply reply(*parse(R"("tool_choice":{"type":"function","function":{"name":"get_time"}})").value(),
                        ToolCallFormat::kHermes);
    std::vector<nlohmann::json> deltas;
    CHECK(reply.feed("{\"zone\":", &deltas).empty());
    CHECK(reply.feed("\"UTC\"}", &deltas).empty());
    CHECK(reply.finish(&deltas).empty());
    REQUIRE(deltas.size() == 3);
    CHECK(deltas[0]["function"]["name"] == "get_time");
    CHECK(deltas[2]["function"]["arguments"] == "\"UTC\"}");
    CHECK(reply.calls()[0].arguments == R"({"zone":"UTC"})");
    CHECK_FALSE(reply.finished_with_calls());
  }
  SECTION("required: the array becomes several calls") {
    ToolCallReply reply(*parse(R"("tool_choice":"required")").value(), ToolCallFormat::kHermes);
    std::vector<nlohmann::json> deltas;
    reply.feed(R"([{"name":"get_time","parameters":{"zone":"UTC"}},)", &deltas);
    reply.feed(R"({"name":"get_weather","parameters":{"city":"A","unit":"c"}}])", &deltas);
    CHECK(reply.finish(&deltas).empty());
    REQUIRE(reply.calls().size() == 2);
    CHECK(reply.calls()[1].arguments == R"({"city":"A","unit":"c"})");
    CHECK(deltas.size() == 4);
    CHECK(deltas[2]["index"] == 1);
    CHECK(reply.finished_with_calls());
  }
  SECTION("auto with parallel_tool_calls false: only the first call") {
    ToolCallReply reply(*parse(R"("parallel_tool_calls":false)").value(), ToolCallFormat::kHermes);
    std::vector<nlohmann::json> deltas;
    reply.feed(R"(<tool_call>{"name": "get_time", "arguments": {"zone": "UTC"}}</tool_call>)"
               R"(<tool_call>{"name": "get_time", "arguments": {"zone": "CET"}}</tool_call>)",
               &deltas);
    reply.finish(&deltas);
    REQUIRE(reply.calls().size() == 1);
    CHECK(reply.calls()[0].arguments == R"({"zone":"UTC"})");
  }
  SECTION("auto with prose only: all content, no calls") {
    ToolCallReply reply(*parse("").value(), ToolCallFormat::kHermes);
    std::vector<nlohmann::json> deltas;
    std::string shown = reply.feed("It is sunny.", &deltas);
    shown += reply.finish(&deltas);
    CHECK(shown == "It is sunny.");
    CHECK(deltas.empty());
    CHECK_FALSE(reply.finished_with_calls());
  }
}
