// GrammarAutomaton: runs a Grammar over bytes.
//
// The grammar is a pushdown automaton; a configuration is the set of live
// parse stacks (frames of rule, alternative, position, shared through a
// hash-consed parent chain). Configurations are interned into dense state ids
// and each (state, byte) transition is memoized the first time it is taken,
// so the automaton becomes a deterministic one built lazily: a walk over the
// vocabulary's byte trie costs one table lookup per byte once warm.
//
// Owns the frames, states and transition table; refers to the Grammar, which
// must outlive it and have passed validate(). Not thread-safe: next() grows
// the tables. CompiledGrammar (compiled_grammar.h) puts it behind a mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "structured/counted_repetitions.h"
#include "structured/grammar.h"

namespace pagoda::structured {

class GrammarAutomaton {
 public:
  using StateId = int32_t;
  static constexpr StateId kDead = 0;  // no stack left: every byte is rejected
  // Limits on the lazily built tables; past them next() answers kDead and
  // overflowed() turns true (the caller reports an error, never a wrong mask).
  // (a state's transition row is 1 KiB: 200k states are 200 MiB at most.)
  static constexpr size_t kMaxFrames = 2'000'000;
  static constexpr size_t kMaxStates = 200'000;
  // New states one token mask may create (begin_budget()): a grammar so
  // ambiguous that one step would need more stalls the batch, so it fails
  // instead (overflowed()).
  static constexpr size_t kMaxNewStatesPerMask = 8192;
  // Frames one mask (or the start state) may create: a grammar whose
  // closures grow exponentially (a rule that two alternatives start with,
  // nested) stops here instead of exhausting memory.
  static constexpr size_t kMaxNewFramesPerMask = 200'000;

  // A hash of a sorted set of frames (a state's stacks).
  struct StackSetHash {
    size_t operator()(const std::vector<int32_t>& v) const;
  };

  explicit GrammarAutomaton(const Grammar& grammar);

  StateId initial() const { return initial_; }
  // The state after `byte`; kDead when no stack accepts it.
  StateId next(StateId state, uint8_t byte) {
    const int32_t known = row(state)[byte];
    return known >= 0 ? known : compute_next(state, byte);
  }
  // The state after all of `bytes` (kDead as soon as one is rejected).
  StateId advance(StateId state, std::string_view bytes);
  // Whether the grammar may end in `state`.
  bool accepting(StateId state) const { return accepting_[static_cast<size_t>(state)] != 0; }
  // Whether every byte of `bytes` leads from `state` back to itself. Takes
  // only the transitions it needs, stopping at the first byte that does not
  // loop; what it learns about the state is kept for the next question.
  bool loops_on_all(StateId state, const ByteSet& bytes);
  // Whether every string of up to `levels` bytes, each in `bytes`, is
  // accepted from `state`, proven by a chain: all of `bytes` lead from
  // `state` to one state, all lead from that one to one state, and so on
  // for `levels` steps or until a state loops on all of them (loops_on_all).
  // A counted repetition (a string of at most 5000 characters) is such a
  // chain: each byte moves one count along. False when the bytes lead to
  // different states at some step, even if each string would be accepted.
  bool accepts_all_strings(StateId state, const ByteSet& bytes, int levels);
  // The same position with the context cut off: each stack of `state` keeps
  // its frames down to its topmost frame of a boundary rule (a rule used in
  // two places or more that can match more than a few bytes: a $defs
  // object, an any-value, a string), within its top kMaxCutDepth frames, and
  // where it would pop below that frame the state after the byte holds an
  // exit instead (has_exit()). Every string `state` accepts without such an
  // exit the local view accepts, and the reverse; so the places of one rule
  // share the tokens that stay inside it (CompiledGrammar's masks). Sets
  // `stacks` to the local view's stacks (intern them with intern_local());
  // false when no stack of `state` is cut.
  bool local_view(StateId state, std::vector<int32_t>& stacks);
  // (Whether a local view may end says nothing about the grammar: never.)
  StateId intern_local(const std::vector<int32_t>& stacks) { return intern_state(stacks, false); }
  static constexpr int kMaxCutDepth = 64;
  // Whether a stack of `state` (a local view's) popped below its cut.
  bool has_exit(StateId state) const { return has_exit_[static_cast<size_t>(state)] != 0; }
  // The same position with every counted repetition (CountedRepetitions)
  // that may still count past `horizon` (>= 2) cut down to `horizon`: for
  // strings shorter than `horizon` bytes it accepts what `state` accepts, so
  // the two have one token mask when no token is longer. `state` itself when
  // nothing is cut. (Frames of the stacks' top kMaxCutDepth levels only.)
  // With `may_grow` false, only a state found before (or `state` itself).
  StateId clamp_counts(StateId state, uint32_t horizon, bool may_grow = true);
  bool overflowed() const { return overflowed_; }
  // Starts counting new states and frames against the per-mask budgets;
  // clears an overflow of the previous budget (what it left is never
  // memoized), but not of the global limits.
  // With may_grow false (the server's grammar memory is spent) no new state
  // or frame may be made: only transitions already taken are followed.
  void begin_budget(bool may_grow = true) {
    budget_end_ = accepting_.size() + (may_grow ? kMaxNewStatesPerMask : 0);
    frame_budget_end_ = frames_.size() + (may_grow ? kMaxNewFramesPerMask : 0);
    overflowed_ = frames_.size() >= kMaxFrames || accepting_.size() >= kMaxStates;
  }
  size_t state_count() const { return accepting_.size(); }
  size_t frame_count() const { return frames_.size(); }
  // What the tables hold, estimated from their sizes (rows, stacks, frames,
  // closures and the hash indexes' nodes); grows with the automaton.
  size_t memory_bytes() const;

 private:
  struct Frame {
    uint32_t rule;
    uint32_t alternative;
    uint32_t position;
    // Frame to continue with when this sequence ends; kRootEnd: the grammar
    // may end; kExit: a local view's cut (local_view()).
    int32_t parent;
  };
  static constexpr int32_t kRootEnd = -1;
  static constexpr int32_t kExit = -2;
  // Rules whose longest match is at least this many bytes are long.
  static constexpr uint32_t kLongMatch = 8;
  // Per rule: referenced from two places or more (itself aside) and long.
  static std::vector<uint8_t> find_boundaries(const Grammar& grammar);
  struct FrameHash {
    size_t operator()(const Frame& f) const;
  };
  struct FrameEqual {
    bool operator()(const Frame& a, const Frame& b) const;
  };

  int32_t intern_frame(uint32_t rule, uint32_t alternative, uint32_t position, int32_t parent);
  // Sets `out` to the frames reachable from `starts` that wait on a byte
  // (sorted, unique; kRootEnd in `starts` is the root's end and sets
  // `accepting`; a kExit reached is kept in `out`, first), expanding rule
  // references and popping finished sequences.
  void close(const std::vector<int32_t>& starts, std::vector<int32_t>& out, bool& accepting);
  // The closure of one frame, computed once and kept: [begin, end) in
  // closure_pool_, and whether the root can end from it.
  struct Closure {
    uint32_t begin = 0;
    uint32_t end = 0;
    bool accepting = false;
    bool exits = false;  // reaches a kExit parent
    bool known = false;
  };
  const Closure& closure_of(int32_t frame);
  // The frame after the element at (rule, alternative, position) of `frame`,
  // or its parent when that element was the sequence's last (a tail call).
  int32_t continuation(uint32_t rule, uint32_t alternative, uint32_t position, int32_t parent);
  StateId intern_state(const std::vector<int32_t>& stacks, bool accepting);
  // `frame` with its counted repetitions cut down to clamp_horizon_ (memoized).
  int32_t clamp_frame(int32_t frame);
  StateId compute_next(StateId state, uint8_t byte);

  const Grammar& grammar_;
  const std::vector<uint8_t> boundary_;  // per rule: find_boundaries()
  CountedRepetitions counted_;
  // clamp_counts()'s memos for clamp_horizon_: per frame and per state (-1:
  // not yet).
  uint32_t clamp_horizon_ = 0;
  std::vector<int32_t> clamped_frame_;
  std::vector<StateId> clamped_state_;
  std::vector<Frame> frames_;
  std::unordered_map<Frame, int32_t, FrameHash, FrameEqual> frame_index_;
  // Per state: sorted frames waiting on a byte (a local view's state may
  // start with kExit).
  std::vector<std::vector<int32_t>> state_stacks_;
  std::vector<uint8_t> accepting_;
  std::vector<uint8_t> has_exit_;
  size_t stack_entries_ = 0;                                                        // sum of the sizes of state_stacks_
  std::unordered_map<std::vector<int32_t>, StateId, StackSetHash> state_index_[2];  // by accepting
  // Transition rows (state -> 256 next states, -1 unknown) in chunks of
  // kRowsPerChunk states, so growing never moves or re-faults the rows.
  static constexpr size_t kRowsPerChunk = 64;
  int32_t* row(StateId state) const {
    const auto s = static_cast<size_t>(state);
    return transition_chunks_[s / kRowsPerChunk].get() + (s % kRowsPerChunk) * 256;
  }
  std::vector<std::unique_ptr<int32_t[]>> transition_chunks_;
  StateId initial_ = kDead;
  bool overflowed_ = false;
  size_t budget_end_ = SIZE_MAX;        // state count at which compute_next() gives up
  size_t frame_budget_end_ = SIZE_MAX;  // frame count at which closure_of() gives up
  std::vector<ByteSet> loop_bytes_;     // per state: bytes known to lead back to it
  std::vector<ByteSet> no_loop_bytes_;  // per state: bytes known to lead elsewhere
  std::vector<Closure> closures_;       // per frame
  std::vector<int32_t> closure_pool_;
  // scratch for compute_next() and close()
  std::vector<int32_t> starts_;
  std::vector<int32_t> stacks_;
  std::vector<int32_t> work_;
  std::vector<uint32_t> visit_mark_;
  uint32_t visit_epoch_ = 0;
};

// Whether `grammar` (validated) matches all of `text`.
bool grammar_matches(const Grammar& grammar, std::string_view text);

}  // namespace pagoda::structured
