// Internal to the Jinja implementation (jinja_render.cpp calls these): the
// built-in filters, tests and methods of strings, dicts and lists, with the
// behaviour Jinja2 3.1 in transformers' ImmutableSandboxedEnvironment gives
// them (what errors there is an error here, what yields a generator there
// is a generator-tagged list here). Pure functions over values; thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"
#include "common/status.h"

namespace pagoda::jinja_builtins {

using Args = std::vector<JinjaValue>;
using Kwargs = std::vector<std::pair<std::string, JinjaValue>>;

// InvalidArgument "chat template: WHAT".
Status error(const std::string& what);
// "undefined", "none", "string", ... for messages.
std::string type_name(const JinjaValue& v);

// The items Python's iter() gives: a list's items, a dict's keys, a
// string's characters; undefined gives none. Anything else is an error.
Result<JinjaList> iterate(const JinjaValue& v);

// A string's characters (UTF-8 sequences), as Python indexes them.
std::vector<std::string> utf8_chars(const std::string& s);

// Markup escaping (markupsafe.escape): & < > ' ".
std::string escape_html(const std::string& s);

// `self.name` as Jinja2's sandboxed getattr finds it: a bound method of a
// string, dict or list (an unsafe, mutating one is an error when called);
// undefined when there is none.
JinjaValue method(const JinjaValue& self, const std::string& name);
// Whether `self.name` is a method (Jinja2 prefers the attribute to the item
// for `.name`: `d.items` is the method even when d has a key "items").
bool has_method(const JinjaValue& self, const std::string& name);

// `in | name(args)`.
Result<JinjaValue> filter(const std::string& name, const JinjaValue& in, const Args& args, const Kwargs& kwargs);
// `v is name(args)`.
Result<bool> test(const std::string& name, const JinjaValue& v, const Args& args);

}  // namespace pagoda::jinja_builtins
