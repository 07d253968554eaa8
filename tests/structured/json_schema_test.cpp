// Tests of the JSON Schema compiler: per keyword (texts accepted and
// refused, at the byte level through grammar_matches) and the MaskBench
// sweep over /work/shared/structured/maskbench (every schema's valid
// instances accepted, invalid ones refused; zero invalid instances accepted).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "structured/grammar_automaton.h"
#include "structured/json_schema_compiler.h"

namespace pagoda::structured {
namespace {

using Json = nlohmann::ordered_json;

Grammar compile(const std::string& schema_text, JsonSchemaOptions options = {}) {
  Result<Grammar> grammar = compile_json_schema(Json::parse(schema_text), options);
  INFO(schema_text);
  if (!grammar.is_ok()) FAIL(grammar.status().to_string());
  return std::move(grammar).value();
}

std::string compile_error(const std::string& schema_text, JsonSchemaOptions options = {}) {
  Result<Grammar> grammar = compile_json_schema(Json::parse(schema_text), options);
  return grammar.is_ok() ? "" : grammar.status().message();
}

// Every text of `accepted` matches and none of `refused` does.
void expect(const std::string& schema_text, const std::vector<std::string>& accepted,
            const std::vector<std::string>& refused, JsonSchemaOptions options = {}) {
  Grammar grammar = compile(schema_text, options);
  for (const std::string& text : accepted) {
    INFO("schema " << schema_text << " should accept " << text);
    CHECK(grammar_matches(grammar, text));
  }
  for (const std::string& text : refused) {
    INFO("schema " << schema_text << " should refuse " << text);
    CHECK_FALSE(grammar_matches(grammar, text));
  }
}

TEST_CASE("json_schema: types") {
  expect(R"({"type": "null"})", {"null"}, {"nul", "0", "\"null\""});
  expect(R"({"type": "boolean"})", {"true", "false"}, {"null", "1"});
  expect(R"({"type": "integer"})", {"0", "-7", "123456789012345678901"}, {"01", "3.0", "1.5", "1e3", "\"1\""});
  expect(R"({"type": "number"})", {"0", "-0", "1.5", "1e-05", "1E+5", "-12.25e3", "100.0"},
         {"01", ".5", "1.", "+1", "1e", "NaN"});
  expect(R"({"type": "string"})", {R"("")", R"("héllo")", R"("a\"b\\c\/\n\u00e9\ud83d\ude00")"},
         {R"("a)", R"("\x")", R"("\ud83d")", "\"a\nb\"", "1"});
  expect(R"({"type": ["string", "null"]})", {"null", R"("x")"}, {"1", "true"});
  expect(R"({})", {"null", "1", R"({"a":[1,{"b":null}]})", R"("s")"}, {"{", "[1,]", R"({"a"})"});
  expect("true", {"1", "[]"}, {"x"});
  CHECK(compile_error("false").find("admits no value") != std::string::npos);
  // -0 is the integer 0.
  expect(R"({"type": "integer"})", {"-0"}, {});
}

TEST_CASE("json_schema: objects") {
  const std::string person =
      R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
      "email": {"type": "string"}, "tags": {"type": "array"}, "x": {"type": "null"}}, "required": ["name"]})";
  // Listed order; optional ones skipped; extra keys (allowed by default) after the listed ones.
  expect(person,
         {R"({"name":"a"})", R"({"name":"a","age":3})", R"({"name":"a","tags":[],"x":null})",
          R"({"name":"a","age":3,"other":{"k":1}})", R"({"name":"a","zz":1,"yy":2})"},
         {R"({})", R"({"age":3})", R"({"name":1})", R"({"name":"a","age":"3"})", R"({"name":"a","name":"b"})",
          R"({"name":"a","other":1,"age":3})", R"({"age":3,"name":"a"})", R"({"name":"a",})"});
  // An extra key may not be a listed one (its value would escape its schema).
  expect(person, {}, {R"({"name":"a","x":null,"age":"s"})"});
  // Schema order by default; with any_order_properties, small property sets
  // in any order, each at most once.
  const std::string two =
      R"({"properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a"], "additionalProperties": false})";
  expect(two, {R"({"a":1,"b":"x"})", R"({"a":1})"}, {R"({"b":"x","a":1})", R"({"b":"x"})"});
  JsonSchemaOptions any_order;
  any_order.any_order_properties = true;
  expect(two, {R"({"a":1,"b":"x"})", R"({"b":"x","a":1})", R"({"a":1})"},
         {R"({"b":"x"})", R"({"a":1,"a":2})", R"({"a":1,"c":2})", R"({"b":"x","a":1,"b":"y"})"}, any_order);
  // additionalProperties as a schema; strict mode.
  expect(R"({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}})", {R"({"a":"s","b":1})", "{}"},
         {R"({"a":1,"b":"s"})"});
  JsonSchemaOptions strict;
  strict.strict = true;
  expect(R"({"type": "object", "properties": {"a": {"type": "integer"}}})", {R"({"a":1})", "{}"}, {R"({"a":1,"b":2})"},
         strict);
  expect(R"({"type": "object", "properties": {"a": {}}, "additionalProperties": true})", {R"({"a":1,"b":2})"}, {},
         strict);
  // Required names outside properties take the additional schema.
  expect(R"({"required": ["k"], "additionalProperties": {"type": "boolean"}})",
         {R"({"k":true})", R"({"k":true,"j":false})"}, {R"({"k":1})", "{}"});
  expect(R"({"type": "object", "minProperties": 1, "maxProperties": 2})", {R"({"a":1})", R"({"a":1,"b":2})"},
         {"{}", R"({"a":1,"b":2,"c":3})"});
  expect(R"({"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": false})",
         {R"({"x-a":1})", "{}"}, {R"({"x-a":"s"})", R"({"y":1})"});
  expect(R"({"type": "object", "propertyNames": {"maxLength": 2}})", {R"({"ab":1})", "{}"}, {R"({"abc":1})"});
  expect(R"({"type": "object", "propertyNames": {"enum": ["a", "b"]}, "properties": {"a": {"type": "integer"}}})",
         {R"({"a":1,"b":"x"})"}, {R"({"c":1})", R"({"a":"s"})"});
}

TEST_CASE("json_schema: arrays") {
  expect(R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3})", {"[1]", "[1,2,3]"},
         {"[]", "[1,2,3,4]", "[\"a\"]", "[1,]"});
  expect(R"({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false})",
         {"[]", R"(["a"])", R"(["a",1])"}, {R"(["a",1,2])", R"([1])"});
  expect(R"({"type": "array", "items": [{"type": "string"}], "additionalItems": {"type": "boolean"}, "minItems": 2})",
         {R"(["a",true])", R"(["a",true,false])"}, {R"(["a"])", R"(["a",1])"});
  expect(R"({"type": "array", "uniqueItems": true, "maxItems": 1})", {"[]", "[1]"}, {"[1,2]"});
  CHECK(compile_error(R"({"properties": {"tags": {"type": "array", "uniqueItems": true}}})") ==
        "json_schema: 'uniqueItems' at /properties/tags is not supported");
}

TEST_CASE("json_schema: strings") {
  // Lengths count code points, and an escape is one.
  expect(R"({"type": "string", "minLength": 2, "maxLength": 3})", {R"("ab")", R"("héé")", R"("\n\u00e9")", R"("😀😀")"},
         {R"("a")", R"("abcd")", R"("é")"});
  expect(R"({"type": "string", "pattern": "^[a-z]+-[0-9]{2}$"})", {R"("ab-12")"}, {R"("ab-1")", R"("AB-12")"});
  expect(R"({"type": "string", "pattern": "[0-9]"})", {R"("a1b")", R"("7")"}, {R"("ab")"});
  // pattern with lengths, and format with lengths: the automaton product.
  expect(R"({"type": "string", "pattern": "^[a-z]+$", "maxLength": 3})", {R"("a")", R"("abc")"},
         {R"("abcd")", R"("")"});
  expect(R"({"type": "string", "format": "email", "maxLength": 7})", {R"("a@b.com")"}, {R"("ab@b.com")", R"("ab")"});
  expect(R"({"allOf": [{"pattern": "a"}, {"pattern": "b"}], "type": "string"})", {R"("ab")", R"("xbya")"}, {R"("aa")"});
  expect(R"({"type": "string", "format": "date"})", {R"("2024-02-29")", R"("2023-12-31")"},
         {R"("2023-02-29")", R"("2023-13-01")", R"("2023-1-01")", R"("0000-01-01")"});
  expect(R"({"type": "string", "format": "date-time"})",
         {R"("2024-01-02T03:04:05Z")", R"("2024-01-02T03:04:05.123+05:30")"},
         {R"("2024-01-02 03:04:05Z")", R"("2024-01-02T03:04:05")", R"("2024-01-02T24:00:00Z")"});
  expect(R"({"type": "string", "format": "uuid"})", {R"("123e4567-e89b-12d3-a456-426614174000")"},
         {R"("123e4567e89b12d3a456426614174000")", R"("xyz")"});
  expect(R"({"type": "string", "format": "ipv4"})", {R"("192.168.0.1")"}, {R"("256.1.1.1")", R"("01.1.1.1")"});
  expect(R"({"type": "string", "format": "uri"})", {R"("https://example.com/a?b=c#d")", R"("mailto:x@y.z")"},
         {R"("example.com")", R"("http://a b")"});
  expect(R"({"type": "string", "format": "x-unknown-format"})", {R"("anything")"}, {});
  CHECK(compile_error(R"({"type": "string", "format": "duration"})").find("'format' at /") != std::string::npos);
}

TEST_CASE("json_schema: numbers") {
  expect(R"({"type": "integer", "minimum": -5, "maximum": 120})", {"-5", "0", "7", "99", "120"},
         {"-6", "121", "1000", "-0", "1.5"});
  expect(R"({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10})", {"1", "9"}, {"0", "10"});
  expect(R"({"type": "integer", "minimum": 0, "exclusiveMinimum": true})", {"1"}, {"0"});  // draft 4
  expect(R"({"type": "integer", "minimum": 1.5, "maximum": 3.5})", {"2", "3"}, {"1", "4"});
  expect(R"({"type": "number", "minimum": 0, "maximum": 1})", {"0", "0.5", "1", "1.0", "0.999"},
         {"-0.1", "1.01", "2", "-1"});
  expect(R"({"type": "number", "exclusiveMinimum": -1.25, "maximum": 2.5})", {"-1.2", "-1.249", "0", "2.5", "2.50"},
         {"-1.25", "-1.3", "2.51", "3"});
  expect(R"({"type": "number", "exclusiveMaximum": 0})", {"-1", "-0.001", "-100.5"}, {"0", "0.0", "1"});
  expect(R"({"type": "integer", "multipleOf": 5})", {"0", "5", "-15", "100"}, {"3", "101"});
  expect(R"({"type": "number", "multipleOf": 1})", {"3"}, {"3.5"});
  CHECK(compile_error(R"({"type": "number", "multipleOf": 0.01})").find("'multipleOf'") != std::string::npos);
}

TEST_CASE("json_schema: enum, const, combinators") {
  expect(R"({"enum": ["a", 1, null, [1, 2], {"k": "v"}]})", {R"("a")", "1", "null", "[1,2]", R"({"k":"v"})"},
         {R"("b")", "2", "[1]"});
  expect(R"({"type": "string", "enum": ["a", 1]})", {R"("a")"}, {"1"});
  expect(R"({"const": "x"})", {R"("x")"}, {R"("y")"});
  expect(R"({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 3}]})", {R"("s")", "3"}, {"2", "null"});
  expect(R"({"oneOf": [{"type": "string"}, {"type": "integer"}]})", {R"("s")", "3"}, {"null"});
  // Disjoint string languages (checked through the automaton product).
  expect(R"({"oneOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "hostname"}]})",
         {R"("10.0.0.1")", R"("example.com")"}, {R"("-x")"});
  CHECK(compile_error(R"({"oneOf": [{"type": "string"}, {"maxLength": 3}]})").find("'oneOf' at /oneOf") !=
        std::string::npos);
  expect(R"({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                      {"properties": {"b": {"type": "string"}}, "required": ["b"]}]})",
         {R"({"a":1,"b":"x"})"}, {R"({"a":1})", R"({"b":"x"})", R"({"a":"1","b":"x"})"});
  expect(R"({"allOf": [{"minimum": 2}, {"maximum": 4}], "type": "integer"})", {"2", "4"}, {"1", "5"});
  expect(R"({"type": ["string", "integer"], "not": {"type": "string"}})", {"1"}, {R"("s")"});
  expect(R"({"enum": ["a", "b", "c"], "not": {"enum": ["b"]}})", {R"("a")", R"("c")"}, {R"("b")"});
  CHECK(compile_error(R"({"if": {"type": "string"}, "then": {"minLength": 1}})") ==
        "json_schema: 'if' at / is not supported");
  CHECK(compile_error(R"({"type": "object", "dependentRequired": {"a": ["b"]}})").find("'dependentRequired'") !=
        std::string::npos);
}

TEST_CASE("json_schema: $ref") {
  expect(R"({"$defs": {"n": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/$defs/n"}})", {"[1,2]"},
         {R"(["a"])"});
  expect(R"({"definitions": {"a b": {"type": "null"}}, "properties": {"x": {"$ref": "#/definitions/a%20b"}}})",
         {R"({"x":null})"}, {R"({"x":1})"});
  // Recursion through rules.
  const std::string tree = R"({"type": "object", "properties": {"value": {"type": "integer"},
      "children": {"type": "array", "items": {"$ref": "#"}}}, "required": ["value"], "additionalProperties": false})";
  expect(tree, {R"({"value":1})", R"({"value":1,"children":[{"value":2,"children":[{"value":3}]}]})"},
         {R"({"value":1,"children":[{}]})", R"({"value":1,"children":[{"value":"x"}]})"});
  expect(R"({"$defs": {"a": {"$anchor": "A", "type": "boolean"}}, "$ref": "#A"})", {"true"}, {"1"});
  // $ref beside other keywords: both apply.
  expect(R"({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "maxLength": 2})", {R"("ab")"},
         {R"("abc")", "1"});
  CHECK(compile_error(R"({"$ref": "http://example.com/other.json"})").find("'$ref' at /$ref") != std::string::npos);
  CHECK(!compile_error(R"({"$ref": "#/$defs/missing"})").empty());
}

TEST_CASE("json_schema: whitespace and json_object") {
  JsonSchemaOptions flexible;
  flexible.whitespace = JsonSchemaOptions::Whitespace::kFlexible;
  expect(
      R"({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}, "required": ["a"]})",
      {R"({"a":[1,2]})", "{ \"a\" : [ 1 ,\n  2 ] }", "{\"a\":[]}"}, {" {\"a\":[]}", "{\"a\" :[1 2]}"}, flexible);
  expect(R"({"const": {"k": [1, 2]}})", {R"({"k":[1,2]})", "{ \"k\": [1, 2] }"}, {}, flexible);
  expect(R"({"type": "object"})", {R"({"a":1})"}, {R"({ "a":1})"});
  Grammar object = json_object_grammar();
  CHECK(grammar_matches(object, R"({"a":[1,{"b":null}],"c":"d"})"));
  CHECK(grammar_matches(object, "{}"));
  CHECK_FALSE(grammar_matches(object, "[]"));
  CHECK_FALSE(grammar_matches(object, "{ }"));
  Grammar loose = json_object_grammar(flexible);
  CHECK(grammar_matches(loose, "{ \"a\" : 1 }"));
  CHECK_FALSE(grammar_matches(loose, "1"));
  // A plain nlohmann::json works too (its keys are sorted).
  CHECK(compile_json_schema(nlohmann::json::parse(R"({"type": "integer"})")).is_ok());
}

// ---------------------------------------------------------------------------
// MaskBench: the texts are json.dumps(data, separators=(",", ":"),
// ensure_ascii=False), which nlohmann's dump() reproduces byte for byte on
// this data (checked against Python for all 12,305 instances).

std::string maskbench_dir() {
  const char* dir = std::getenv("PAGODA_MASKBENCH_DIR");
  return dir ? dir : "/work/shared/structured/maskbench";
}

// "json_schema: 'uniqueItems' at /x is not supported" -> "uniqueItems".
std::string error_keyword(const std::string& message) {
  const size_t open = message.find('\'');
  const size_t close = open == std::string::npos ? open : message.find('\'', open + 1);
  if (close == std::string::npos) return message.substr(0, 60);
  return message.substr(open + 1, close - open - 1);
}

TEST_CASE("json_schema: MaskBench schemas, byte level") {
  namespace fs = std::filesystem;
  const std::string dir = maskbench_dir();
  if (!fs::is_directory(dir)) {
    WARN("MaskBench data not found at " << dir << " (set PAGODA_MASKBENCH_DIR); skipped");
    return;
  }
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  const char* only = std::getenv("PAGODA_MASKBENCH_ONLY");  // substring filter, for debugging
  const bool verbose = std::getenv("PAGODA_MASKBENCH_VERBOSE") != nullptr;
  // Under a sanitizer every third schema (the whole run took 221 s of the
  // ASan stage, its longest test); the Release suite checks them all.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr size_t kStride = 3;
#else
  constexpr size_t kStride = 1;
#endif
  size_t file_index = 0;

  size_t schemas = 0, passing = 0, compile_errors = 0, valid_refused_schemas = 0;
  size_t instances = 0, valid_refused = 0;
  std::map<std::string, size_t> errors_by_keyword;
  std::vector<std::string> invalidation_errors;
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& file : files) {
    if (only && file.find(only) == std::string::npos) continue;
    if (file_index++ % kStride != 0) continue;
    std::ifstream in(file);
    Json data = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (data.is_discarded() || !data.contains("schema") || !data.contains("tests")) continue;
    ++schemas;
    const std::string name = fs::path(file).filename().string();
    Result<Grammar> grammar = compile_json_schema(data["schema"]);
    if (!grammar.is_ok()) {
      ++compile_errors;
      ++errors_by_keyword[error_keyword(grammar.status().message())];
      if (verbose) std::printf("COMPILE %s: %s\n", name.c_str(), grammar.status().message().c_str());
      continue;
    }
    bool pass = true;
    for (const Json& test : data["tests"]) {
      const std::string text = test["data"].dump(-1, ' ', false, Json::error_handler_t::replace);
      const bool valid = test.value("valid", false);
      const bool matched = grammar_matches(*grammar, text);
      ++instances;
      if (valid && !matched) {
        ++valid_refused;
        pass = false;
        if (verbose) std::printf("REFUSED %s: %.300s\n", name.c_str(), text.c_str());
      } else if (!valid && matched) {
        invalidation_errors.push_back(name + ": " + text.substr(0, 300));
        pass = false;
      }
    }
    passing += pass;
    valid_refused_schemas += !pass;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::ostringstream report;
  report << "MaskBench: " << passing << " / " << schemas << " schemas pass ("
         << (schemas ? 100.0 * passing / schemas : 0.0) << "%); " << compile_errors << " compile errors; "
         << valid_refused_schemas << " schemas fail on instances (" << valid_refused << " valid instances refused of "
         << instances << " matched); " << invalidation_errors.size() << " invalidation errors; " << seconds
         << " s\n  compile errors by keyword:";
  std::vector<std::pair<size_t, std::string>> sorted;
  for (const auto& [keyword, count] : errors_by_keyword) sorted.emplace_back(count, keyword);
  std::sort(sorted.rbegin(), sorted.rend());
  for (const auto& [count, keyword] : sorted) report << " " << keyword << "=" << count;
  WARN(report.str());
  for (const std::string& error : invalidation_errors) UNSCOPED_INFO("invalid instance accepted: " << error);
  REQUIRE(invalidation_errors.empty());
  if (!only && schemas > 3000 / kStride) CHECK(passing >= schemas * 85 / 100);
}

}  // namespace
}  // namespace pagoda::structured

TEST_CASE("json_schema: a schema nested thousands deep is refused quickly") {
  std::string deep;
  for (int i = 0; i < 20000; ++i) deep += R"({"type":"array","items":)";
  deep += R"({"type":"integer"})";
  for (int i = 0; i < 20000; ++i) deep += "}";
  const auto start = std::chrono::steady_clock::now();
  auto grammar = pagoda::structured::compile_json_schema(nlohmann::ordered_json::parse(deep));
  REQUIRE_FALSE(grammar.is_ok());
  CHECK_THAT(grammar.status().message(), Catch::Contains("nested more than"));
  // Deep but within the JSON limit: refused by the schema-level limit.
  std::string medium;
  for (int i = 0; i < 300; ++i) medium += R"({"items":)";
  medium += "{}";
  for (int i = 0; i < 300; ++i) medium += "}";
  auto refused = pagoda::structured::compile_json_schema(nlohmann::ordered_json::parse(medium));
  REQUIRE_FALSE(refused.is_ok());
  CHECK_THAT(refused.status().message(), Catch::Contains("nested more than"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("json_schema: hostile reference chains and merges are refused without a crash") {
  using pagoda::structured::compile_json_schema;
  // A $ref cycle under `not`.
  auto cycle = compile_json_schema(nlohmann::ordered_json::parse(
      R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a","not":{"type":"string"}})"));
  CHECK_FALSE(cycle.is_ok());
  // A chain of 25,000 references (each a short pointer, so no nesting limit sees it).
  nlohmann::ordered_json chain;
  for (int i = 0; i < 25000; ++i)
    chain["$defs"]["a" + std::to_string(i)] = {{"$ref", "#/$defs/a" + std::to_string(i + 1)}};
  chain["$defs"]["a25000"] = {{"type", "null"}};
  chain["$ref"] = "#/$defs/a0";
  auto long_chain = compile_json_schema(chain);
  REQUIRE_FALSE(long_chain.is_ok());
  CHECK_THAT(long_chain.status().message(), Catch::Contains("more than"));
  // allOf of two recursive definitions, 4 properties a level: exponential if merged naively.
  nlohmann::ordered_json merge;
  for (const char* p : {"t", "u"}) {
    for (int i = 0; i <= 12; ++i) {
      nlohmann::ordered_json next =
          i < 12 ? nlohmann::ordered_json{{"$ref", std::string("#/$defs/") + p + std::to_string(i + 1)}}
                 : nlohmann::ordered_json{{"type", "null"}};
      nlohmann::ordered_json props;
      for (const char* k : {"a", "b", "c", "d"}) props[k] = next;
      merge["$defs"][std::string(p) + std::to_string(i)] = {{"type", "object"}, {"properties", props}};
    }
  }
  merge["allOf"] = {{{"$ref", "#/$defs/t0"}}, {{"$ref", "#/$defs/u0"}}};
  const auto start = std::chrono::steady_clock::now();
  auto merged = compile_json_schema(merge);
  CHECK_FALSE(merged.is_ok());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}
