// The structured-output fields of a request body: each spelling (OpenAI,
// vLLM, llama.cpp) gives the right GrammarSpec, key order of a schema is
// kept, and bad or conflicting fields are errors naming the field.
#include <catch2/catch.hpp>

#include "server/structured_request.h"

using namespace pagoda;
using structured::GrammarSpec;

namespace {

Result<std::optional<GrammarSpec>> parse(const char* body) {
  return parse_structured_request(nlohmann::ordered_json::parse(body));
}

std::string error_field(const char* body) {
  auto r = parse(body);
  REQUIRE_FALSE(r.is_ok());
  return r.status().field();
}

}  // namespace

TEST_CASE("response_format: text, json_object and json_schema") {
  CHECK_FALSE(parse(R"({"prompt":"x"})").value().has_value());
  CHECK_FALSE(parse(R"({"response_format":{"type":"text"}})").value().has_value());
  CHECK(parse(R"({"response_format":{"type":"json_object"}})").value()->kind == GrammarSpec::Kind::kJsonObject);
  auto spec = parse(R"({"response_format":{"type":"json_schema","json_schema":{"name":"p","strict":true,
      "schema":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"}}}}}})");
  REQUIRE(spec.is_ok());
  REQUIRE(spec.value().has_value());
  CHECK(spec.value()->kind == GrammarSpec::Kind::kJsonSchema);
  CHECK(spec.value()->strict);
  // Property order as written (zeta before alpha), not sorted.
  CHECK(spec.value()->schema["properties"].begin().key() == "zeta");
  CHECK(error_field(R"({"response_format":{"type":"yaml"}})") == "response_format.type");
  CHECK(error_field(R"({"response_format":"json"})") == "response_format");
  CHECK(error_field(R"({"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":7}}})") ==
        "response_format.json_schema.schema");
}

TEST_CASE("vLLM's guided fields and structured_outputs, llama.cpp's json_schema and grammar") {
  CHECK(parse(R"({"guided_json":{"type":"integer"}})").value()->kind == GrammarSpec::Kind::kJsonSchema);
  CHECK(parse(R"({"guided_json":"{\"type\":\"integer\"}"})").value()->schema["type"] == "integer");
  CHECK(parse(R"({"guided_regex":"[a-z]+"})").value()->text == "[a-z]+");
  CHECK(parse(R"({"guided_choice":["yes","no"]})").value()->choices.size() == 2);
  CHECK(parse(R"({"guided_grammar":"root ::= \"a\""})").value()->kind == GrammarSpec::Kind::kGbnf);
  CHECK(parse(R"({"structured_outputs":{"regex":"a+"}})").value()->kind == GrammarSpec::Kind::kRegex);
  CHECK(parse(R"({"structured_outputs":{"json_object":true}})").value()->kind == GrammarSpec::Kind::kJsonObject);
  CHECK(parse(R"({"json_schema":{"type":"string"}})").value()->kind == GrammarSpec::Kind::kJsonSchema);
  CHECK(parse(R"({"grammar":"root ::= [0-9]"})").value()->kind == GrammarSpec::Kind::kGbnf);
  CHECK(error_field(R"({"guided_choice":[]})") == "guided_choice");
  CHECK(error_field(R"({"guided_choice":["a",1]})") == "guided_choice");
  CHECK(error_field(R"({"guided_regex":""})") == "guided_regex");
  CHECK(error_field(R"({"guided_json":"not json"})") == "guided_json");
  CHECK(error_field(R"({"structured_outputs":{"yaml":"x"}})") == "structured_outputs.yaml");
  CHECK(error_field(R"({"structured_outputs":{"regex":"a","choice":["b"]}})").rfind("structured_outputs.", 0) == 0);
}

TEST_CASE("two grammars in one request are refused, naming the second") {
  CHECK(error_field(R"({"response_format":{"type":"json_object"},"guided_regex":"a"})") == "guided_regex");
  // response_format text asks for nothing, so a guided field beside it is fine.
  CHECK(parse(R"({"response_format":{"type":"text"},"guided_regex":"a"})").value()->kind == GrammarSpec::Kind::kRegex);
  // ... and the field named as the grammar's is the one that asked for it.
  std::string field;
  auto guided = parse_structured_request(
      nlohmann::ordered_json::parse(R"({"response_format":{"type":"text"},"guided_regex":"a"})"), &field);
  REQUIRE(guided.is_ok());
  CHECK(field == "guided_regex");
}

TEST_CASE("a schema nested thousands deep is refused before anything recurses over it") {
  std::string deep = R"({"guided_json":)";
  for (int i = 0; i < 100000; ++i) deep += R"({"x":)";
  deep += "1";
  for (int i = 0; i < 100000; ++i) deep += "}";
  deep += "}";
  auto r = parse_structured_request(nlohmann::ordered_json::parse(deep));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().field() == "guided_json");
  CHECK_THAT(r.status().message(), Catch::Contains("nested more than"));
}
