#include "structured/grammar_spec.h"

#include "structured/gbnf_parser.h"
#include "structured/grammar_merge.h"
#include "structured/json_schema_compiler.h"
#include "structured/regex_compiler.h"

namespace pagoda::structured {

const char* GrammarSpec::kind_name() const {
  switch (kind) {
    case Kind::kJsonSchema:
      return "json_schema";
    case Kind::kJsonObject:
      return "json_object";
    case Kind::kRegex:
      return "regex";
    case Kind::kChoice:
      return "choice";
    case Kind::kGbnf:
      return "grammar";
  }
  return "?";
}

std::string GrammarSpec::cache_key() const {
  nlohmann::ordered_json key = {{"kind", kind_name()}, {"ws", flexible_whitespace}};
  switch (kind) {
    case Kind::kJsonSchema:
      key["schema"] = schema;
      key["strict"] = strict;
      break;
    case Kind::kJsonObject:
      break;
    case Kind::kRegex:
    case Kind::kGbnf:
      key["text"] = text;
      break;
    case Kind::kChoice:
      key["choices"] = choices;
      break;
  }
  return key.dump();
}

namespace {

Result<Grammar> compile_source(const GrammarSpec& spec) {
  JsonSchemaOptions json_options;
  json_options.strict = spec.strict;
  json_options.whitespace =
      spec.flexible_whitespace ? JsonSchemaOptions::Whitespace::kFlexible : JsonSchemaOptions::Whitespace::kCompact;
  switch (spec.kind) {
    case GrammarSpec::Kind::kJsonSchema:
      return compile_json_schema(spec.schema, json_options);
    case GrammarSpec::Kind::kJsonObject:
      return json_object_grammar(json_options);
    case GrammarSpec::Kind::kRegex:
      return regex_grammar(spec.text);
    case GrammarSpec::Kind::kGbnf:
      return parse_gbnf(spec.text);
    case GrammarSpec::Kind::kChoice: {
      if (spec.choices.empty()) return Status::invalid_argument("choice: the list of choices is empty");
      Grammar grammar;
      std::vector<Sequence> alternatives;
      for (const std::string& choice : spec.choices) alternatives.push_back(grammar.literal(choice));
      grammar.set_root(grammar.add_rule("choice", std::move(alternatives)));
      if (Status status = grammar.validate(); !status) return status;
      return grammar;
    }
  }
  return Status::internal("unknown grammar kind");
}

}  // namespace

Result<Grammar> compile_grammar_spec(const GrammarSpec& spec) {
  Result<Grammar> grammar = compile_source(spec);
  if (!grammar) return grammar.status();
  // Copies of one sub-grammar (inline schemas repeated under several
  // properties) share their parser states and masks once merged.
  Grammar merged = merge_equal_rules(*grammar);
  if (Status status = merged.validate(); !status) return status;
  return merged;
}

}  // namespace pagoda::structured
