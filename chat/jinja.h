// JinjaTemplate: the subset of Jinja2 that Hugging Face chat templates use,
// rendered the way transformers' apply_chat_template does (trim_blocks,
// lstrip_blocks, loop controls; no autoescape).
//
// Supported: text, {{ }}, {% %}, {# #} with '-' whitespace control;
// if/elif/else, for (one or two loop variables, inline 'if' filter, else,
// loop.index/index0/first/last/length/revindex/previtem/nextitem),
// break/continue, set (also ns.attr = ...), generation blocks (rendered as
// their body); literals (strings, numbers, true/false/none in either case,
// lists, dicts), + - * / // % ~, comparisons, and/or/not, in/not in,
// 'a if c else b', attribute and subscript access, slices with steps,
// calls; filters trim, length/count, tojson(indent), upper, lower, title,
// capitalize, default/d, first, last, join, string, int, float, list,
// items, replace, safe, abs, round, reverse, unique, selectattr/rejectattr,
// map(attribute=); tests defined, undefined, none, string, number,
// integer, float, boolean, mapping, iterable, sequence, true, false, odd,
// even, eq/equalto/==, in; string methods strip/lstrip/rstrip/split/
// startswith/endswith/upper/lower/title/capitalize/replace; dict methods
// items/keys/values/get; globals raise_exception, strftime_now, namespace,
// range. Anything else is a parse or render error (Status), never a crash.
//
// Immutable after parse(); render() is const and thread-safe (each call has
// its own scopes). Copies share the parsed tree.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "chat/jinja_value.h"
#include "common/status.h"

namespace pagoda {

class JinjaTemplate {
 public:
  // InvalidArgument with the position and the problem on a syntax error or
  // an unsupported construct.
  static Result<JinjaTemplate> parse(std::string_view source);

  // Renders with the variables of `context` (a dict) on top of the globals
  // above. InvalidArgument for a runtime error or raise_exception(msg).
  Result<std::string> render(const JinjaValue& context) const;

  struct Node;  // parsed statement tree (jinja_ast.h)

 private:
  std::shared_ptr<const Node> root_;
};

}  // namespace pagoda
