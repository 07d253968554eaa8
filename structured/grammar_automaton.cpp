#include "structured/grammar_automaton.h"

#include <algorithm>

namespace pagoda::structured {

namespace {

size_t mix(size_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

}  // namespace

size_t GrammarAutomaton::FrameHash::operator()(const Frame& f) const {
  size_t h = mix(0, f.rule);
  h = mix(h, f.alternative);
  h = mix(h, f.position);
  return mix(h, static_cast<uint32_t>(f.parent));
}

bool GrammarAutomaton::FrameEqual::operator()(const Frame& a, const Frame& b) const {
  return a.rule == b.rule && a.alternative == b.alternative && a.position == b.position && a.parent == b.parent;
}

size_t GrammarAutomaton::StackSetHash::operator()(const std::vector<int32_t>& v) const {
  size_t h = v.size();
  for (int32_t x : v) h = mix(h, static_cast<uint32_t>(x));
  return h;
}

GrammarAutomaton::GrammarAutomaton(const Grammar& grammar)
    : grammar_(grammar), boundary_(find_boundaries(grammar)), counted_(grammar) {
  intern_state({}, false);  // kDead
  std::vector<int32_t> starts;
  const uint32_t root = grammar.root();
  for (uint32_t a = 0; a < grammar.rules()[root].alternatives.size(); ++a) {
    starts.push_back(grammar.rules()[root].alternatives[a].empty() ? kRootEnd : intern_frame(root, a, 0, kRootEnd));
  }
  std::vector<int32_t> stacks;
  bool accepting = false;
  frame_budget_end_ = kMaxNewFramesPerMask;  // the start state is bounded like one mask
  close(starts, stacks, accepting);
  frame_budget_end_ = SIZE_MAX;
  initial_ = intern_state(stacks, accepting);
}

int32_t GrammarAutomaton::intern_frame(uint32_t rule, uint32_t alternative, uint32_t position, int32_t parent) {
  const Frame frame{rule, alternative, position, parent};
  auto [it, inserted] = frame_index_.try_emplace(frame, static_cast<int32_t>(frames_.size()));
  if (inserted) frames_.push_back(frame);
  return it->second;
}

int32_t GrammarAutomaton::continuation(uint32_t rule, uint32_t alternative, uint32_t position, int32_t parent) {
  const Sequence& seq = grammar_.rules()[rule].alternatives[alternative];
  if (position + 1 == seq.size()) return parent;
  return intern_frame(rule, alternative, position + 1, parent);
}

void GrammarAutomaton::close(const std::vector<int32_t>& starts, std::vector<int32_t>& out, bool& accepting) {
  for (int32_t start : starts) {
    if (start == kExit) {
      out.push_back(kExit);
      continue;
    }
    if (start < 0) {
      accepting = true;
      continue;
    }
    const Closure c = closure_of(start);
    accepting = accepting || c.accepting;
    if (c.exits) out.push_back(kExit);
    out.insert(out.end(), closure_pool_.begin() + c.begin, closure_pool_.begin() + c.end);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

const GrammarAutomaton::Closure& GrammarAutomaton::closure_of(int32_t start) {
  if (closures_.size() <= static_cast<size_t>(start)) closures_.resize(frames_.size() * 2 + 16);
  if (closures_[static_cast<size_t>(start)].known) return closures_[static_cast<size_t>(start)];
  Closure c;
  c.begin = static_cast<uint32_t>(closure_pool_.size());
  ++visit_epoch_;
  work_.assign(1, start);
  while (!work_.empty()) {
    const int32_t id = work_.back();
    work_.pop_back();
    if (id == kExit) {
      c.exits = true;
      continue;
    }
    if (id < 0) {
      c.accepting = true;
      continue;
    }
    if (visit_mark_.size() <= static_cast<size_t>(id)) visit_mark_.resize(frames_.size() * 2 + 16, 0);
    if (visit_mark_[static_cast<size_t>(id)] == visit_epoch_) continue;
    visit_mark_[static_cast<size_t>(id)] = visit_epoch_;

    const Frame frame = frames_[static_cast<size_t>(id)];
    const Element element = grammar_.rules()[frame.rule].alternatives[frame.alternative][frame.position];
    if (element.kind == Element::Kind::kBytes) {
      closure_pool_.push_back(id);
      continue;
    }
    if (frames_.size() >= frame_budget_end_ || frames_.size() >= kMaxFrames) {
      // Give up: the partial closure is dropped, never memoized.
      overflowed_ = true;
      work_.clear();
      closure_pool_.resize(c.begin);
      static const Closure kEmpty;
      return kEmpty;
    }
    const int32_t after = continuation(frame.rule, frame.alternative, frame.position, frame.parent);
    const Rule& callee = grammar_.rules()[element.index];
    for (uint32_t a = 0; a < callee.alternatives.size(); ++a) {
      work_.push_back(callee.alternatives[a].empty() ? after : intern_frame(element.index, a, 0, after));
    }
  }
  c.end = static_cast<uint32_t>(closure_pool_.size());
  c.known = true;
  if (closures_.size() <= static_cast<size_t>(start)) closures_.resize(frames_.size() * 2 + 16);
  closures_[static_cast<size_t>(start)] = c;
  return closures_[static_cast<size_t>(start)];
}

GrammarAutomaton::StateId GrammarAutomaton::intern_state(const std::vector<int32_t>& stacks, bool accepting) {
  auto& index = state_index_[accepting ? 1 : 0];
  if (auto it = index.find(stacks); it != index.end()) return it->second;
  const auto id = static_cast<StateId>(accepting_.size());
  index.emplace(stacks, id);
  state_stacks_.push_back(stacks);
  stack_entries_ += stacks.size();
  accepting_.push_back(accepting ? 1 : 0);
  has_exit_.push_back(!stacks.empty() && stacks.front() == kExit ? 1 : 0);
  loop_bytes_.emplace_back();
  no_loop_bytes_.emplace_back();
  if (static_cast<size_t>(id) % kRowsPerChunk == 0)
    transition_chunks_.push_back(std::make_unique_for_overwrite<int32_t[]>(kRowsPerChunk * 256));
  std::fill_n(row(id), 256, id == kDead ? kDead : -1);
  return id;
}

size_t GrammarAutomaton::memory_bytes() const {
  // A hash node: the value, a next pointer and the cached hash, rounded up
  // to malloc's 16 bytes, plus a bucket pointer.
  constexpr size_t kNode = 48;
  const size_t states = accepting_.size();
  const size_t per_state = sizeof(std::vector<int32_t>) * 2 + sizeof(ByteSet) * 2 + 2 + kNode;
  const size_t rows = transition_chunks_.size() * kRowsPerChunk * 256 * sizeof(int32_t);
  const size_t stacks = stack_entries_ * sizeof(int32_t) * 2;  // the state's copy and the index key's
  const size_t frames = frames_.size() * (sizeof(Frame) + kNode) + closures_.capacity() * sizeof(Closure) +
                        closure_pool_.capacity() * sizeof(int32_t) + visit_mark_.capacity() * sizeof(uint32_t);
  const size_t clamps =
      counted_.memory_bytes() + (clamped_frame_.capacity() + clamped_state_.capacity()) * sizeof(int32_t);
  return states * per_state + rows + stacks + frames + boundary_.size() + clamps;
}

bool GrammarAutomaton::loops_on_all(StateId state, const ByteSet& bytes) {
  const auto s = static_cast<size_t>(state);
  if (bytes.is_subset_of(loop_bytes_[s])) return true;
  if (!no_loop_bytes_[s].is_disjoint_from(bytes)) return false;
  for (int b = 0; b < 256; ++b) {
    const auto byte = static_cast<uint8_t>(b);
    if (!bytes.contains(byte) || loop_bytes_[s].contains(byte)) continue;
    if (next(state, byte) != state) {
      // A transition refused by a budget (kDead, overflowed) proves nothing.
      if (!overflowed_) no_loop_bytes_[s].add(byte);
      return false;
    }
    loop_bytes_[s].add(byte);
  }
  return true;
}

bool GrammarAutomaton::accepts_all_strings(StateId state, const ByteSet& bytes, int levels) {
  for (int level = 0; level < levels; ++level) {
    if (loops_on_all(state, bytes)) return true;
    // The largest byte first: sets that mix ASCII with UTF-8 lead bytes (a
    // character counted as one whatever its length) fail there at once.
    const StateId common = next(state, bytes.max());
    // A local view's exit proves nothing: what follows the cut may reject
    // every byte.
    if (common == kDead || has_exit(common)) return false;
    const bool one_state = bytes.all_of([&](uint8_t byte) { return next(state, byte) == common; });
    if (!one_state) return false;
    state = common;
  }
  return true;
}

GrammarAutomaton::StateId GrammarAutomaton::compute_next(StateId state, uint8_t byte) {
  if (frames_.size() > kMaxFrames || accepting_.size() > kMaxStates || accepting_.size() >= budget_end_) {
    overflowed_ = true;
    return kDead;
  }
  // The bytes that match exactly the same frames as `byte` lead to the same
  // state: find them (the intersection of each frame's set or its
  // complement) and fill all their transitions at once.
  ByteSet same_frames = ByteSet::all();
  starts_.clear();
  for (int32_t id : state_stacks_[static_cast<size_t>(state)]) {
    if (id < 0) continue;  // an exit waits on no byte
    const Frame frame = frames_[static_cast<size_t>(id)];
    const Element element = grammar_.rules()[frame.rule].alternatives[frame.alternative][frame.position];
    const ByteSet& set = grammar_.byte_sets()[element.index];
    if (set.contains(byte)) {
      same_frames.intersect(set);
      starts_.push_back(continuation(frame.rule, frame.alternative, frame.position, frame.parent));
    } else {
      same_frames.subtract(set);
    }
  }
  StateId result = kDead;
  if (!starts_.empty()) {
    stacks_.clear();
    bool accepting = false;
    close(starts_, stacks_, accepting);
    if (overflowed_) return kDead;  // a closure gave up: nothing is memoized
    result = intern_state(stacks_, accepting);
  }
  int32_t* targets = row(state);
  for (int b = 0; b < 256; ++b) {
    if (same_frames.contains(static_cast<uint8_t>(b))) targets[b] = result;
  }
  return result;
}

std::vector<uint8_t> GrammarAutomaton::find_boundaries(const Grammar& grammar) {
  const std::vector<Rule>& rules = grammar.rules();
  std::vector<uint32_t> references(rules.size(), 0);
  for (uint32_t r = 0; r < rules.size(); ++r) {
    for (const Sequence& seq : rules[r].alternatives) {
      for (const Element& e : seq) {
        if (e.kind == Element::Kind::kRule && e.index != r) ++references[e.index];
      }
    }
  }
  // The longest match of each rule, capped (kLongMatch: that long or more,
  // or unbounded), by a depth-first search; a rule met again on the way
  // (recursion) is unbounded.
  constexpr uint32_t kUnknown = UINT32_MAX, kOnPath = UINT32_MAX - 1;
  std::vector<uint32_t> longest(rules.size(), kUnknown);
  struct Visit {
    uint32_t rule;
    uint32_t alternative = 0;
    uint32_t position = 0;
    uint32_t length = 0;  // of the current alternative so far
    uint32_t best = 0;
  };
  std::vector<Visit> path;
  for (uint32_t root = 0; root < rules.size(); ++root) {
    if (longest[root] != kUnknown) continue;
    longest[root] = kOnPath;
    path.push_back({root});
    while (!path.empty()) {
      Visit& v = path.back();
      const Rule& rule = rules[v.rule];
      if (v.alternative == rule.alternatives.size()) {
        longest[v.rule] = std::min(v.best, kLongMatch);
        const uint32_t done = longest[v.rule];
        path.pop_back();
        if (!path.empty()) {
          Visit& caller = path.back();
          caller.length = std::min(caller.length + done, kLongMatch);
          ++caller.position;
        }
        continue;
      }
      const Sequence& seq = rule.alternatives[v.alternative];
      if (v.position == seq.size()) {
        v.best = std::max(v.best, v.length);
        ++v.alternative;
        v.position = 0;
        v.length = 0;
        continue;
      }
      const Element e = seq[v.position];
      if (e.kind == Element::Kind::kBytes) {
        v.length = std::min(v.length + 1, kLongMatch);
        ++v.position;
      } else if (longest[e.index] == kOnPath) {
        v.length = kLongMatch;  // recursion: unbounded
        ++v.position;
      } else if (longest[e.index] != kUnknown) {
        v.length = std::min(v.length + longest[e.index], kLongMatch);
        ++v.position;
      } else {
        longest[e.index] = kOnPath;
        path.push_back({e.index});
      }
    }
  }
  std::vector<uint8_t> boundary(rules.size(), 0);
  for (uint32_t r = 0; r < rules.size(); ++r) boundary[r] = references[r] >= 2 && longest[r] >= kLongMatch;
  return boundary;
}

bool GrammarAutomaton::local_view(StateId state, std::vector<int32_t>& stacks) {
  stacks.clear();
  bool cut = false;
  int32_t chain[kMaxCutDepth];
  for (int32_t id : state_stacks_[static_cast<size_t>(state)]) {
    // The stack's topmost frame of a boundary rule with anything below it,
    // and the frames above it.
    int depth = 0;
    int32_t boundary = -1;
    for (int32_t f = id; f >= 0 && depth < kMaxCutDepth; f = frames_[static_cast<size_t>(f)].parent) {
      const Frame& frame = frames_[static_cast<size_t>(f)];
      chain[depth++] = f;
      if (boundary_[frame.rule] && frame.parent >= 0) {
        boundary = f;
        break;
      }
    }
    if (boundary < 0) {
      stacks.push_back(id);
      continue;
    }
    cut = true;
    // Rebuilt from the boundary frame up, each on the one below.
    int32_t below = kExit;
    for (int k = depth - 1; k >= 0; --k) {
      const Frame f = frames_[static_cast<size_t>(chain[k])];
      below = intern_frame(f.rule, f.alternative, f.position, below);
    }
    stacks.push_back(below);
  }
  if (!cut) return false;
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  return true;
}

GrammarAutomaton::StateId GrammarAutomaton::clamp_counts(StateId state, uint32_t horizon, bool may_grow) {
  if (counted_.empty()) return state;
  if (horizon != clamp_horizon_) {
    clamp_horizon_ = horizon;
    clamped_frame_.clear();
    clamped_state_.clear();
  }
  const auto s = static_cast<size_t>(state);
  if (clamped_state_.size() <= s) clamped_state_.resize(accepting_.size(), -1);
  if (clamped_state_[s] >= 0) return clamped_state_[s];
  if (!may_grow) return state;
  std::vector<int32_t> stacks;
  bool changed = false;
  for (int32_t id : state_stacks_[s]) {
    const int32_t clamped = id < 0 ? id : clamp_frame(id);
    changed = changed || clamped != id;
    stacks.push_back(clamped);
  }
  StateId result = state;
  if (changed) {
    std::sort(stacks.begin(), stacks.end());
    stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
    result = intern_state(stacks, accepting_[s] != 0);
  }
  if (clamped_state_.size() <= s) clamped_state_.resize(accepting_.size(), -1);
  clamped_state_[s] = result;
  return result;
}

int32_t GrammarAutomaton::clamp_frame(int32_t id) {
  auto known = [&](int32_t f) {
    return static_cast<size_t>(f) < clamped_frame_.size() && clamped_frame_[static_cast<size_t>(f)] >= 0;
  };
  // The frames from `id` down to one already clamped, the root, or the depth
  // limit (below which nothing is cut: still the same strings).
  int32_t chain[kMaxCutDepth];
  int depth = 0;
  int32_t f = id;
  for (; f >= 0 && depth < kMaxCutDepth && !known(f); f = frames_[static_cast<size_t>(f)].parent) chain[depth++] = f;
  int32_t below = f >= 0 && known(f) ? clamped_frame_[static_cast<size_t>(f)] : f;
  for (int k = depth - 1; k >= 0; --k) {
    const Frame frame = frames_[static_cast<size_t>(chain[k])];
    const uint32_t rule = counted_.shorter_rule(frame.rule, clamp_horizon_);
    const int32_t clamped = rule == frame.rule && below == frame.parent
                                ? chain[k]
                                : intern_frame(rule, frame.alternative, frame.position, below);
    if (clamped_frame_.size() < frames_.size()) clamped_frame_.resize(frames_.size() * 2, -1);
    clamped_frame_[static_cast<size_t>(chain[k])] = clamped;
    below = clamped;
  }
  return below;
}

GrammarAutomaton::StateId GrammarAutomaton::advance(StateId state, std::string_view bytes) {
  for (char c : bytes) {
    if (state == kDead) return kDead;
    state = next(state, static_cast<uint8_t>(c));
  }
  return state;
}

bool grammar_matches(const Grammar& grammar, std::string_view text) {
  GrammarAutomaton automaton(grammar);
  const GrammarAutomaton::StateId end = automaton.advance(automaton.initial(), text);
  return end != GrammarAutomaton::kDead && automaton.accepting(end);
}

}  // namespace pagoda::structured
