// merge_equal_rules: a Grammar with its duplicate rules made one.
//
// Compilers write the same sub-grammar many times: a JSON Schema repeats an
// inline object under several properties, and each copy becomes rules of
// its own. Each copy then has parser states of its own, so a token mask
// walked at one copy is walked again at the next. Rules whose alternatives
// are the same (byte sets equal, references to rules already found equal)
// match the same strings; merged, the copies share states, cached masks and
// local views (a merged rule is used in several places).
//
// A pure function of its input (thread-safe).
#pragma once

#include "structured/grammar.h"

namespace pagoda::structured {

// The rules reachable from the root, each class of equal rules kept once
// (bottom-up: a rule is compared after the rules it refers to, except those
// it reaches again through a longer cycle, which compare by identity; a
// rule's references to itself compare as such). The
// result matches exactly the strings `grammar` matches.
Grammar merge_equal_rules(const Grammar& grammar);

}  // namespace pagoda::structured
