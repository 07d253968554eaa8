// JSON Schema compiler: turns a JSON Schema (draft 2020-12, and the older
// drafts seen in practice: draft-04/06/07, 2019-09) into the Grammar of the
// JSON texts the schema accepts, for OpenAI's `response_format` json_schema
// and json_object.
//
// Exactness: the grammar never accepts a text the schema rejects. What the
// schema asks that a grammar cannot honour exactly is refused with an
// InvalidArgument naming the keyword and its JSON pointer
// ("json_schema: 'uniqueItems' at /properties/tags is not supported").
// Where exactness would be expensive the grammar accepts a documented subset
// of the valid texts instead (it may refuse some valid texts):
//   - object members come in the order of `properties` (then `required`
//     names not listed there, then any other keys); with the option
//     any_order_properties, objects with at most kAnyOrderProperties listed
//     properties accept them in any order;
//     extra keys (additionalProperties) are written the way json.dumps
//     writes them (raw UTF-8, short escapes, \u00XX for other controls);
//   - const / enum values are written in their canonical compact form;
//   - a number with minimum / maximum has no exponent and is never "-0";
//   - `format` values follow a strict regular subset of their RFCs.
// Keywords: type, enum, const, properties, required, additionalProperties,
// patternProperties (one pattern, or patterns sharing one schema),
// propertyNames (pattern / length / enum), minProperties, maxProperties,
// items, prefixItems, additionalItems, minItems, maxItems, minLength,
// maxLength, pattern, format, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, multipleOf (integers), anyOf, oneOf (when its branches
// are provably disjoint), allOf (merged), not (of a type, enum or const),
// $ref (#, JSON pointers, $defs / definitions, $anchor, $id of the
// document's resources; recursion through rules). Annotations and unknown
// keywords are ignored, as the specification says. Refused: uniqueItems
// (unless at most one item), contains, dependentRequired / dependencies /
// dependentSchemas, if/then/else, unevaluated*, $dynamicRef, remote $ref.
//
// Whitespace: kCompact allows none (json.dumps(separators=(",", ":"))
// output); kFlexible allows [ \t\n\r]{0,kMaxWhitespace} between tokens (not
// before or after the whole text).
//
// Thread-safety: stateless; concurrent calls are safe.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "structured/grammar.h"

namespace pagoda::structured {

struct JsonSchemaOptions {
  // OpenAI strict mode: objects allow no properties beyond `properties`
  // unless additionalProperties says otherwise.
  bool strict = false;
  enum class Whitespace { kCompact, kFlexible } whitespace = Whitespace::kCompact;
  // Objects with at most kAnyOrderProperties listed properties accept them
  // in any order (each once). Off: the order of `properties`, as OpenAI's
  // structured outputs write them.
  bool any_order_properties = false;
};

// Most whitespace characters between two tokens with Whitespace::kFlexible.
inline constexpr uint32_t kMaxWhitespace = 64;
// With any_order_properties, objects with at most this many listed
// properties take them in any order.
inline constexpr size_t kAnyOrderProperties = 4;

// Deepest JSON nesting (arrays and objects) of a schema compile_json_schema
// takes; deeper ones are refused before any recursive pass.
inline constexpr size_t kMaxSchemaJsonDepth = 512;

// The grammar of the JSON texts valid under `schema` (validated). Property
// order is the order of `properties` in `schema`, so pass an ordered_json
// when it matters (a plain json sorts keys).
Result<Grammar> compile_json_schema(const nlohmann::ordered_json& schema, const JsonSchemaOptions& options = {});
Result<Grammar> compile_json_schema(const nlohmann::json& schema, const JsonSchemaOptions& options = {});

// Any JSON object (response_format json_object), with the given whitespace.
Grammar json_object_grammar(const JsonSchemaOptions& options = {});

}  // namespace pagoda::structured
