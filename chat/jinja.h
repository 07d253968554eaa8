// JinjaTemplate: the subset of Jinja2 that Hugging Face chat templates use,
// rendered the way transformers' apply_chat_template does (Jinja2 3.1's
// ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, loop
// controls; no autoescape; newlines normalised and one final newline
// dropped). Every template of ../shared/chat-templates renders byte for
// byte as Jinja2 does (tests/chat/template_parity_test.sh).
//
// Supported: text, {{ }}, {% %}, {# #} with '-' and '+' whitespace control;
// if/elif/else, for (one or more loop variables, inline 'if' filter, else,
// loop.index/index0/first/last/length/revindex/revindex0/previtem/nextitem/
// cycle/depth), break/continue, set (also ns.attr = ..., and the block form
// {% set x %}...{% endset %}), {% filter f(args) %}...{% endfilter %}, macros
// with defaults and keyword arguments (a macro sees its parameters and the
// template's top-level names; recursion allowed), generation blocks
// (rendered as their body); literals (strings, ints, floats with exponents,
// true/false/none in either case, lists, tuples, dicts), + - * / // % ~,
// comparisons, and/or/not, in/not in, 'a if c else b', attribute and
// subscript access (an attribute of an undefined value is an error, a dict's
// methods come before its keys for '.name'), slices with steps (by
// characters), calls; filters trim, length/count, tojson (transformers':
// ensure_ascii, indent, separators, sort_keys), indent(width, first, blank),
// upper, lower, title, capitalize, default/d, first, last, join, string,
// safe, e/escape, int, float, list, items, dictsort, sort, min, max, sum,
// replace, abs, round, reverse, unique, wordcount, attr, select/reject,
// selectattr/rejectattr, map(attribute= or a filter); tests defined,
// undefined, none, string, number, integer, float, boolean, mapping,
// iterable, sequence, callable, escaped, lower, upper, true, false, odd,
// even, divisibleby, eq/equalto/==, ne, lt/le/gt/ge, sameas, in; string
// methods strip/lstrip/rstrip/split/rsplit/splitlines/join/find/count/index/
// startswith/endswith/upper/lower/title/capitalize/replace/isdigit/...; dict
// methods items/keys/values/get/copy (mutating ones are unsafe, an error, as
// in the immutable sandbox); list index/count; globals raise_exception,
// strftime_now (local time), namespace, range, dict. Values print as Python
// prints them (repr of containers, floats, True/None), Markup from |safe
// escapes what '+' adds to it, and generators (map, select, items, ...) are
// not JSON-serializable. Anything else (include, import, call blocks,
// recursive loops, '%' formatting, ...) is a parse or render error (Status),
// never a crash; so is nesting beyond the limits of jinja_ast.h (expression
// recursion and tree height, blocks, macro calls, render frames), and a
// render that runs over 10 million steps or 64 MiB of output.
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
