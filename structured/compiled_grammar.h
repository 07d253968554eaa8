// CompiledGrammar and GrammarMatcher: token masks for one grammar and one
// tokenizer.
//
// CompiledGrammar owns a validated Grammar, the GrammarAutomaton built lazily
// over it and a cache of token masks per automaton state, all behind one
// mutex: thread-safe, shared by every request that uses the same grammar with
// the same tokenizer (the cache, structured/grammar_cache.h, hands it out).
// A mask is computed by walking the TokenTrie in depth-first order with the
// automaton, skipping each subtree whose first byte is rejected; EOS is
// allowed exactly when the grammar may end. A state inside a rule used in
// many places (a $defs object, an any-value) takes the tokens that stay
// inside the rule from the mask of its local view
// (GrammarAutomaton::local_view), walked once for all the rule's places
// from the second on, and walks only the subtrees where a token leaves it.
// The positions of a counted repetition that no token can take to its bound
// share one mask (GrammarAutomaton::clamp_counts).
//
// GrammarMatcher is one sequence's position in a CompiledGrammar: a state id.
// It belongs to one request (not thread-safe by itself; its CompiledGrammar is).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "structured/grammar.h"
#include "structured/grammar_automaton.h"
#include "structured/grammar_memory_budget.h"
#include "structured/token_trie.h"

namespace pagoda::structured {

// A vocabulary-sized bit set: bit t set = token t allowed.
using TokenMask = std::vector<uint64_t>;

class CompiledGrammar {
 public:
  using StateId = GrammarAutomaton::StateId;
  // Cached masks per grammar beyond which new ones are computed, not kept.
  static constexpr size_t kMaskCacheBytes = size_t{16} << 20;
  // Subtrees of the vocabulary trie at least this large are tested whole
  // against the self-loop bytes of the state above them.
  static constexpr uint32_t kSkipSubtreeNodes = 16;

  // `budget` (optional: null = unbounded) is charged with what the
  // automaton and mask cache hold, and refunded when this is destroyed.
  CompiledGrammar(Grammar grammar, std::shared_ptr<const TokenTrie> trie,
                  std::shared_ptr<GrammarMemoryBudget> budget = nullptr);
  ~CompiledGrammar();
  CompiledGrammar(const CompiledGrammar&) = delete;  // the automaton refers to grammar_
  CompiledGrammar& operator=(const CompiledGrammar&) = delete;

  StateId initial() const { return initial_; }
  // Whether even the start state outgrew the matcher's limits (the grammar
  // cannot be served; GrammarCache refuses it).
  bool start_overflowed() const { return start_overflowed_; }
  const TokenTrie& trie() const { return *trie_; }
  const Grammar& grammar() const { return grammar_; }

  // Sets `mask` (resized to the vocabulary) to the tokens allowed in
  // `state`. An error when the automaton outgrew its limits.
  Status fill_mask(StateId state, TokenMask& mask);
  // The state after token `id`; GrammarAutomaton::kDead when the grammar
  // rejects it. EOS ids: kDead unless the grammar may end (then the state
  // itself). A token a mask allowed is followed even when the grammar
  // memory is spent: that may add up to one state per byte (a mask from a
  // shared walk, a clamped count or a local view did not build them).
  StateId advance(StateId state, int32_t id);
  StateId advance_bytes(StateId state, std::string_view bytes);
  bool accepting(StateId state);
  // Size of the lazily built automaton so far (states, frames).
  std::pair<size_t, size_t> automaton_size();
  // How many masks were made by walking the vocabulary (not from the cache).
  size_t masks_walked();
  // Bytes charged to the budget: the automaton's tables and cached masks.
  size_t memory_bytes();

 private:
  // A trie node where a local view's walk met an exit: the tokens there and
  // below depend on the context.
  struct Exit {
    uint32_t node;
    std::string path;  // the node's bytes from the root
  };
  // A local view (GrammarAutomaton::local_view) met by one state or more.
  // Its state and mask are made when a second state meets it (the first
  // walks on its own: a view met once costs less that way).
  struct LocalView {
    const std::vector<int32_t>* stacks;       // its key in local_view_index_
    StateId state = GrammarAutomaton::kDead;  // interned for its walk
    bool has_mask = false;
    bool unusable = false;    // its walk outgrew the automaton's budget
    TokenMask allowed;        // the tokens that stay inside it
    std::vector<Exit> exits;  // where tokens leave it
  };
  // Sets in `mask` the tokens of the trie nodes [begin, end) that `base`
  // allows; the nodes are a subtree's, below a node at depth `base_depth`
  // (0: the root). With `exits` (a local view's walk), a node whose state
  // holds an exit is recorded there and its subtree left, its tokens not set.
  void walk(StateId base, uint32_t begin, uint32_t end, uint16_t base_depth, TokenMask& mask, std::vector<Exit>* exits)
      REQUIRES(mutex_);
  // When the subtree of trie node `node_index` was walked before from the
  // same state `next` (the state after the node's byte) and recorded: sets
  // its allowed tokens in `mask` and answers true. Otherwise remembers the
  // pair (met once) or starts recording it (met again) and answers false.
  bool from_subtree_memo(uint32_t node_index, StateId next, TokenMask& mask) REQUIRES(mutex_);
  // Stores the innermost recording's tokens as `mask` now holds them.
  void finish_recording(const TokenMask& mask) REQUIRES(mutex_);
  // Sets `mask` to the tokens `state` allows from its local view's mask and
  // its exits walked from `state` itself; false (nothing set) when `state`
  // has no local view, or is the first place to meet it, or the local walk
  // outgrew the automaton's budget (`may_grow`: begin_budget()'s).
  bool fill_from_local_view(StateId state, bool may_grow, TokenMask& mask) REQUIRES(mutex_);
  // Charges the budget with what the tables grew by since the last call.
  void charge_growth() REQUIRES(mutex_);

  const Grammar grammar_;
  const std::shared_ptr<const TokenTrie> trie_;
  // Longer than any token: GrammarAutomaton::clamp_counts's horizon.
  const uint32_t count_horizon_;
  Mutex mutex_;
  GrammarAutomaton automaton_ GUARDED_BY(mutex_);
  std::unordered_map<StateId, TokenMask> mask_cache_ GUARDED_BY(mutex_);
  size_t mask_cache_bytes_ GUARDED_BY(mutex_) = 0;
  size_t masks_walked_ GUARDED_BY(mutex_) = 0;
  // Per state id: its local view, an index into local_views_ (kNoView: no
  // stack is cut; kUnknown: not asked yet).
  static constexpr int32_t kNoView = -1, kUnknown = -2;
  std::vector<int32_t> local_view_of_ GUARDED_BY(mutex_);
  std::vector<LocalView> local_views_ GUARDED_BY(mutex_);
  std::unordered_map<std::vector<int32_t>, int32_t, GrammarAutomaton::StackSetHash> local_view_index_
      GUARDED_BY(mutex_);
  size_t local_view_bytes_ GUARDED_BY(mutex_) = 0;        // what the three above hold
  std::vector<int32_t> local_stacks_ GUARDED_BY(mutex_);  // scratch
  // Subtree walks met again: per (trie node << 32 | state after its byte),
  // the tokens of the node's subtree that state allows, as bits over
  // token_ids()[subtree_tokens_begin, subtree_tokens_end); empty: met once.
  // Only subtrees of kMemoSubtreeTokens tokens or more; the bytes count with
  // the cached masks. (Several states, such as the key prefixes of an object
  // with many optional properties, lead to one state after a byte or two.)
  static constexpr uint32_t kMemoSubtreeTokens = 64;
  std::unordered_map<uint64_t, std::vector<uint64_t>> subtree_memo_ GUARDED_BY(mutex_);
  struct Recording {
    uint32_t node;
    uint64_t key;
  };
  std::vector<Recording> recordings_ GUARDED_BY(mutex_);  // open in walk(), innermost last
  bool walk_may_grow_ GUARDED_BY(mutex_) = true;
  std::vector<StateId> walk_states_ GUARDED_BY(mutex_);
  std::string walk_path_ GUARDED_BY(mutex_);
  const std::shared_ptr<GrammarMemoryBudget> budget_;
  size_t charged_ GUARDED_BY(mutex_) = 0;
  StateId initial_ = GrammarAutomaton::kDead;
  bool start_overflowed_ = false;
};

inline bool mask_allows(const TokenMask& mask, int32_t id) {
  return id >= 0 && static_cast<size_t>(id >> 6) < mask.size() &&
         ((mask[static_cast<size_t>(id >> 6)] >> (id & 63)) & 1);
}

class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<CompiledGrammar> grammar)
      : grammar_(std::move(grammar)), state_(grammar_->initial()) {}

  Status fill_mask(TokenMask& mask) { return grammar_->fill_mask(state_, mask); }
  // Advances by token `id`; false (and no change) when the grammar rejects it.
  bool accept(int32_t id);
  // Whether the grammar may end here (EOS allowed).
  bool can_end() { return grammar_->accepting(state_); }
  // Whether the grammar is complete and nothing more may follow.
  bool finished() const { return finished_; }
  const CompiledGrammar& grammar() const { return *grammar_; }

 private:
  std::shared_ptr<CompiledGrammar> grammar_;
  CompiledGrammar::StateId state_;
  bool finished_ = false;
};

}  // namespace pagoda::structured
