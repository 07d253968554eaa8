// Internal to the Jinja implementation (jinja_parse.cpp builds this tree,
// jinja_render.cpp walks it): the expression and statement nodes of a parsed
// chat template. Immutable once parsed; not part of the public API.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja.h"

namespace pagoda {

// ---- syntax tree ---------------------------------------------------------------

namespace jinja_ast {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class EK {
  kLit,
  kVar,
  kAttr,
  kIndex,
  kSlice,
  kCall,
  kFilter,
  kTest,
  kNeg,
  kNot,
  kBin,
  kAnd,
  kOr,
  kCond,
  kList,
  kDict
};

struct Expr {
  EK kind;
  std::string name;  // var/attr/filter/test name, binary operator
  JinjaValue lit;
  std::vector<ExprPtr> args;  // operands / positional arguments (the object first)
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // kTest
  int depth = 1;         // height of this subtree (bounded by kMaxExprTreeDepth)
};

}  // namespace jinja_ast

using jinja_ast::EK;
using jinja_ast::Expr;
using jinja_ast::ExprPtr;

enum class NK { kText, kOut, kIf, kFor, kSet, kBreak, kContinue, kBody, kMacro, kSetBlock, kFilterBlock };

// Nesting limits for hostile templates (a template comes from a model file):
// expressions and statement blocks nested deeper are a parse error, macro
// calls nested deeper a render error. Real chat templates nest a few levels.
constexpr int kMaxExprDepth = 100;
constexpr int kMaxBlockDepth = 100;
constexpr int kMaxCallDepth = 100;
// A chain such as a.b.b.b... or 1+1+1+... is parsed by a loop, not by
// recursion, but evaluating and freeing it recurses: trees are kept this low.
constexpr int kMaxExprTreeDepth = 256;
// Render and evaluation frames nested at once (blocks in macros in blocks ...).
constexpr int kMaxRenderDepth = 1000;

struct JinjaTemplate::Node {
  NK kind;
  std::string text;               // kText; kMacro: the macro's name
  ExprPtr expr;                   // kOut, kSet value, kFor iterable; kFilterBlock: the filter (args[0] unused)
  std::vector<std::string> vars;  // kFor loop vars; kSet/kSetBlock: {name} or {name, attr}; kMacro: parameters
  std::vector<ExprPtr> defaults;  // kMacro: one per parameter (null: required)
  ExprPtr cond;                   // kFor inline filter
  std::vector<std::pair<ExprPtr, std::unique_ptr<Node>>> branches;  // kIf
  std::unique_ptr<Node> else_body;                                  // kIf, kFor
  std::unique_ptr<Node> body;                                       // kFor, kMacro, kSetBlock, kFilterBlock
  std::vector<std::unique_ptr<Node>> children;                      // kBody
};

using Node = JinjaTemplate::Node;
using NodePtr = std::unique_ptr<Node>;

}  // namespace pagoda
