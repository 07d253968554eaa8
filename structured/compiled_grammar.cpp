#include "structured/compiled_grammar.h"

#include <algorithm>
#include <bit>

namespace pagoda::structured {

namespace {

// Allows the tokens ids[begin, end) in `mask`.
void allow_tokens(TokenMask& mask, const std::vector<int32_t>& ids, uint32_t begin, uint32_t end) {
  for (uint32_t t = begin; t < end; ++t) {
    const auto id = static_cast<uint32_t>(ids[t]);
    mask[id >> 6] |= uint64_t{1} << (id & 63);
  }
}

}  // namespace

CompiledGrammar::CompiledGrammar(Grammar grammar, std::shared_ptr<const TokenTrie> trie,
                                 std::shared_ptr<GrammarMemoryBudget> budget)
    : grammar_(std::move(grammar)), trie_(std::move(trie)),
      count_horizon_(static_cast<uint32_t>(trie_->max_depth()) + 1), automaton_(grammar_), budget_(std::move(budget)) {
  MutexLock lock(mutex_);
  initial_ = automaton_.initial();
  start_overflowed_ = automaton_.overflowed();
  charge_growth();
}

CompiledGrammar::~CompiledGrammar() {
  MutexLock lock(mutex_);
  if (budget_) budget_->release(charged_);
}

void CompiledGrammar::charge_growth() {
  const size_t now = automaton_.memory_bytes() + mask_cache_bytes_ + local_view_bytes_;
  if (budget_ && now > charged_) budget_->charge(now - charged_);
  charged_ = std::max(charged_, now);
}

size_t CompiledGrammar::memory_bytes() {
  MutexLock lock(mutex_);
  return charged_;
}

Status CompiledGrammar::fill_mask(StateId state, TokenMask& mask) {
  const size_t words = (static_cast<size_t>(trie_->vocab_size()) + 63) / 64;
  MutexLock lock(mutex_);
  if (auto it = mask_cache_.find(state); it != mask_cache_.end()) {
    mask = it->second;
    return Status::ok();
  }
  const bool room = budget_ == nullptr || budget_->has_room();
  automaton_.begin_budget(room);
  walk_may_grow_ = room;
  // Inside a counted repetition far from its bound (a string of at most
  // 5000 characters), the mask is that of one position for all the counts
  // no token can reach the bound from.
  const StateId key = automaton_.clamp_counts(state, count_horizon_, room);
  if (key != state) {
    if (auto it = mask_cache_.find(key); it != mask_cache_.end()) {
      mask = it->second;
      return Status::ok();
    }
  }
  mask.assign(words, 0);
  ++masks_walked_;
  if (!fill_from_local_view(key, room, mask)) {
    walk(key, 0, static_cast<uint32_t>(trie_->nodes().size()), 0, mask, nullptr);
  }
  if (automaton_.accepting(state)) {
    for (int32_t id : trie_->eos_ids()) {
      if (id >= 0 && id < trie_->vocab_size()) mask[static_cast<size_t>(id) >> 6] |= uint64_t{1} << (id & 63);
    }
  }
  charge_growth();
  if (automaton_.overflowed() && !room) {
    return budget_->spent("this grammar could not grow");
  }
  if (automaton_.overflowed()) {
    // The grammar's fault, not the server's load: not worth retrying.
    return Status::invalid_argument(
        "structured output: the grammar is too ambiguous to follow (its matcher needed more than " +
        std::to_string(GrammarAutomaton::kMaxNewStatesPerMask) + " new states or " +
        std::to_string(GrammarAutomaton::kMaxNewFramesPerMask) + " new frames for one token, or " +
        std::to_string(GrammarAutomaton::kMaxStates) + " states in all)");
  }
  if (room && mask_cache_bytes_ + words * 8 <= kMaskCacheBytes) {
    mask_cache_.emplace(key, mask);
    mask_cache_bytes_ += words * 8;
    charge_growth();
  }
  return Status::ok();
}

bool CompiledGrammar::fill_from_local_view(StateId state, bool may_grow, TokenMask& mask) {
  // A hash node (key, value, next pointer, cached hash; malloc's rounding)
  // and its bucket pointer.
  constexpr size_t kMapEntry = 48;
  if (!may_grow) return false;  // a local view adds frames and a state
  const auto id = static_cast<size_t>(state);
  if (local_view_of_.size() <= id) {
    local_view_bytes_ += (automaton_.state_count() - local_view_of_.size()) * sizeof(int32_t);
    local_view_of_.resize(automaton_.state_count(), kUnknown);
  }
  if (local_view_of_[id] == kUnknown) {
    local_view_of_[id] = kNoView;
    if (!automaton_.local_view(state, local_stacks_)) return false;
    auto [index, added] = local_view_index_.try_emplace(local_stacks_, static_cast<int32_t>(local_views_.size()));
    local_view_of_[id] = index->second;
    if (added) {
      local_views_.push_back({&index->first});
      local_view_bytes_ += kMapEntry + sizeof(LocalView) + local_stacks_.size() * sizeof(int32_t);
      return false;  // the first place walks on its own
    }
  }
  if (local_view_of_[id] == kNoView) return false;
  LocalView& view = local_views_[static_cast<size_t>(local_view_of_[id])];
  if (view.unusable) return false;
  if (!view.has_mask) {
    // Kept with the grammar's cached masks, while they have room.
    if (mask_cache_bytes_ + mask.size() * 8 > kMaskCacheBytes) return false;
    view.state = automaton_.intern_local(*view.stacks);
    view.allowed.assign(mask.size(), 0);
    walk(view.state, 0, static_cast<uint32_t>(trie_->nodes().size()), 0, view.allowed, &view.exits);
    if (automaton_.overflowed()) {
      // The local walk outgrew the budget: each place walks on its own.
      view.unusable = true;
      view.allowed = TokenMask();
      view.exits = std::vector<Exit>();
      automaton_.begin_budget(may_grow);
      return false;
    }
    view.has_mask = true;
    mask_cache_bytes_ += mask.size() * 8;
    for (const Exit& e : view.exits) mask_cache_bytes_ += sizeof(Exit) + e.path.size();
  }
  mask = view.allowed;
  const std::vector<int32_t>& ids = trie_->token_ids();
  for (const Exit& e : view.exits) {
    // The real state at the exit's node: it allows the node's tokens (unless
    // what follows the cut rejects everything) and decides its subtree.
    const StateId at = automaton_.advance(state, e.path);
    if (at == GrammarAutomaton::kDead) continue;
    const TokenTrie::Node& node = trie_->nodes()[e.node];
    allow_tokens(mask, ids, node.tokens_begin, node.tokens_end);
    walk(at, e.node + 1, node.subtree_end, node.depth, mask, nullptr);
  }
  return true;
}

void CompiledGrammar::walk(StateId base, uint32_t begin, uint32_t end, uint16_t base_depth, TokenMask& mask,
                           std::vector<Exit>* exits) {
  const std::vector<TokenTrie::Node>& nodes = trie_->nodes();
  const std::vector<ByteSet>& subtree_bytes = trie_->subtree_bytes();
  const std::vector<uint16_t>& byte_counts = trie_->subtree_byte_counts();
  const std::vector<int32_t>& ids = trie_->token_ids();
  walk_states_.resize(trie_->max_depth() + 1);
  walk_path_.resize(trie_->max_depth() + 1);
  StateId* states = walk_states_.data();
  states[base_depth] = base;
  const bool memo = exits == nullptr && walk_may_grow_;
  for (uint32_t i = begin; i < end;) {
    while (!recordings_.empty() && i >= nodes[recordings_.back().node].subtree_end) finish_recording(mask);
    const TokenTrie::Node& node = nodes[i];
    const StateId parent = states[node.depth - 1];
    // A large subtree whose every string the parent's state accepts: its
    // bytes loop on that state (string contents, digits), or move one count
    // along a counted repetition (a chain of states, proven in up to
    // bytes x height lookups, so tried only when that is fewer than the
    // subtree's nodes): all its tokens are allowed, without walking it.
    const uint32_t size = node.subtree_end - i;
    if (size >= kSkipSubtreeNodes && (automaton_.loops_on_all(parent, subtree_bytes[i]) ||
                                      (node.height < 255 && uint32_t{byte_counts[i]} * node.height <= size &&
                                       automaton_.accepts_all_strings(parent, subtree_bytes[i], node.height)))) {
      allow_tokens(mask, ids, node.subtree_tokens_begin, node.subtree_tokens_end);
      i = node.subtree_end;
      continue;
    }
    const StateId next = automaton_.next(parent, node.byte);
    if (next == GrammarAutomaton::kDead) {
      i = node.subtree_end;
      continue;
    }
    if (exits != nullptr) {
      walk_path_[node.depth - 1] = static_cast<char>(node.byte);
      if (automaton_.has_exit(next)) {
        exits->push_back({i, walk_path_.substr(0, node.depth)});
        i = node.subtree_end;
        continue;
      }
    }
    if (memo && node.subtree_tokens_end - node.subtree_tokens_begin >= kMemoSubtreeTokens &&
        from_subtree_memo(i, next, mask)) {
      i = node.subtree_end;
      continue;
    }
    states[node.depth] = next;
    allow_tokens(mask, ids, node.tokens_begin, node.tokens_end);
    ++i;
  }
  while (!recordings_.empty()) finish_recording(mask);
}

bool CompiledGrammar::from_subtree_memo(uint32_t node_index, StateId next, TokenMask& mask) {
  constexpr size_t kMapEntry = 48;  // a hash node and its bucket pointer
  const uint64_t key = uint64_t{node_index} << 32 | static_cast<uint32_t>(next);
  auto it = subtree_memo_.find(key);
  if (it == subtree_memo_.end()) {
    // Met once: remembered, not recorded (most pairs are never met again).
    if (mask_cache_bytes_ + kMapEntry > kMaskCacheBytes) return false;
    subtree_memo_.emplace(key, std::vector<uint64_t>());
    mask_cache_bytes_ += kMapEntry;
    return false;
  }
  const TokenTrie::Node& node = trie_->nodes()[node_index];
  if (it->second.empty()) {
    // Met again: this walk records it.
    const size_t bytes = (node.subtree_tokens_end - node.subtree_tokens_begin + 63) / 64 * 8;
    if (mask_cache_bytes_ + bytes <= kMaskCacheBytes) {
      mask_cache_bytes_ += bytes;
      recordings_.push_back({node_index, key});
    }
    return false;
  }
  const std::vector<int32_t>& ids = trie_->token_ids();
  const std::vector<uint64_t>& bits = it->second;
  for (size_t w = 0; w < bits.size(); ++w) {
    for (uint64_t x = bits[w]; x != 0; x &= x - 1) {
      const auto id = static_cast<uint32_t>(ids[node.subtree_tokens_begin + w * 64 + std::countr_zero(x)]);
      mask[id >> 6] |= uint64_t{1} << (id & 63);
    }
  }
  return true;
}

void CompiledGrammar::finish_recording(const TokenMask& mask) {
  const Recording r = recordings_.back();
  recordings_.pop_back();
  // A walk cut short by the automaton's budget proves nothing.
  if (automaton_.overflowed()) return;
  const TokenTrie::Node& node = trie_->nodes()[r.node];
  const std::vector<int32_t>& ids = trie_->token_ids();
  std::vector<uint64_t> bits((node.subtree_tokens_end - node.subtree_tokens_begin + 63) / 64, 0);
  for (uint32_t t = node.subtree_tokens_begin; t < node.subtree_tokens_end; ++t) {
    if (mask_allows(mask, ids[t]))
      bits[(t - node.subtree_tokens_begin) / 64] |= uint64_t{1} << ((t - node.subtree_tokens_begin) % 64);
  }
  subtree_memo_[r.key] = std::move(bits);
}

CompiledGrammar::StateId CompiledGrammar::advance(StateId state, int32_t id) {
  if (trie_->is_eos(id)) return accepting(state) ? state : GrammarAutomaton::kDead;
  const std::string_view bytes = trie_->token_bytes(id);
  if (bytes.empty()) return GrammarAutomaton::kDead;
  return advance_bytes(state, bytes);
}

CompiledGrammar::StateId CompiledGrammar::advance_bytes(StateId state, std::string_view bytes) {
  MutexLock lock(mutex_);
  automaton_.begin_budget(true);
  const StateId next = automaton_.advance(state, bytes);
  charge_growth();
  return next;
}

bool CompiledGrammar::accepting(StateId state) {
  MutexLock lock(mutex_);
  return automaton_.accepting(state);
}

size_t CompiledGrammar::masks_walked() {
  MutexLock lock(mutex_);
  return masks_walked_;
}

std::pair<size_t, size_t> CompiledGrammar::automaton_size() {
  MutexLock lock(mutex_);
  return {automaton_.state_count(), automaton_.frame_count()};
}

bool GrammarMatcher::accept(int32_t id) {
  if (finished_) return false;
  const CompiledGrammar::StateId next = grammar_->advance(state_, id);
  if (next == GrammarAutomaton::kDead) return false;
  if (grammar_->trie().is_eos(id)) finished_ = true;
  state_ = next;
  return true;
}

}  // namespace pagoda::structured
