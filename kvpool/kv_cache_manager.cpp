#include "kvpool/kv_cache_manager.h"

#include <algorithm>
#include <limits>

namespace pagoda {

Result<std::unique_ptr<KvCacheManager>> KvCacheManager::create(const KvCacheConfig& config) {
  if (config.page_size < 1) {
    return Status::invalid_argument("kv.page_size: got " + std::to_string(config.page_size) + ", must be >= 1");
  }
  if (config.num_pages < 2 || config.num_pages > std::numeric_limits<int32_t>::max()) {
    return Status::invalid_argument("kv.num_pages: got " + std::to_string(config.num_pages) + ", allowed 2.." +
                                    std::to_string(std::numeric_limits<int32_t>::max()) +
                                    " (page 0 is the reserved null page)");
  }
  if (config.sliding_window < 0) {
    return Status::invalid_argument("sliding_window: got " + std::to_string(config.sliding_window) +
                                    ", must be >= 0 (0 = full attention)");
  }
  if (config.hash_fn == nullptr) return Status::invalid_argument("hash_fn: must not be null");
  return std::unique_ptr<KvCacheManager>(new KvCacheManager(config));
}

KvCacheManager::KvCacheManager(const KvCacheConfig& config)
    : config_(config), pool_(config.num_pages, config.page_size) {}

int64_t KvCacheManager::lookup_prefix(RequestId id, std::span<const int32_t> prompt_tokens,
                                      std::string_view cache_salt) {
  RequestPages& s = pages_of(id);
  if (!s.table.empty()) return 0;
  s = RequestPages{};
  s.salt.assign(cache_salt);
  s.looked_up_tokens = static_cast<int64_t>(prompt_tokens.size());
  prefix_query_tokens_ += s.looked_up_tokens;
  if (!config_.enable_prefix_caching || prompt_tokens.empty()) return 0;

  PrefixMatch m = match_prefix(prompt_tokens, s.salt);
  for (int32_t page : m.pages) pool_.acquire(page);
  s.table = std::move(m.pages);
  s.last_hash = m.last_hash;
  s.last_page = m.last_page;
  s.last_generation = m.last_generation;
  s.num_cached_pages = static_cast<int64_t>(s.table.size());
  s.num_tokens = s.num_cached_pages * config_.page_size;
  if (!m.partial_next.empty()) s.num_tokens += copy_partial_page(s, m.partial_next);
  s.hit_tokens = s.num_tokens;
  prefix_hit_tokens_ += s.hit_tokens;
  return s.num_tokens;
}

KvCacheManager::PrefixMatch KvCacheManager::match_prefix(std::span<const int32_t> prompt_tokens,
                                                         std::string_view salt) const {
  PrefixMatch m;
  const size_t ps = static_cast<size_t>(config_.page_size);
  const size_t max_pages = (prompt_tokens.size() - 1) / ps;  // the last token is always computed
  for (size_t i = 0; i < max_pages; ++i) {
    const auto toks = prompt_tokens.subspan(i * ps, ps);
    const uint64_t h = config_.hash_fn(m.last_hash, toks, salt);
    const int32_t page = pool_.find_cached(h, m.last_page, m.last_generation, toks, salt);
    if (page == kNoPage) break;
    m.pages.push_back(page);
    m.last_hash = h;
    m.last_page = page;
    m.last_generation = pool_.page(page).generation;
  }
  const size_t next = m.pages.size() * ps;
  const size_t reusable = std::min(ps, prompt_tokens.size() - 1 - next);  // the last token is always computed
  if (config_.copy_rows) m.partial_next = prompt_tokens.subspan(next, reusable);
  return m;
}

int64_t KvCacheManager::probe_prefix(std::span<const int32_t> prompt_tokens, std::string_view cache_salt) const {
  if (!config_.enable_prefix_caching || prompt_tokens.empty()) return 0;
  const PrefixMatch m = match_prefix(prompt_tokens, cache_salt);
  int64_t cached = static_cast<int64_t>(m.pages.size()) * config_.page_size;
  if (!m.partial_next.empty())
    cached += pool_.find_partial(m.last_page, m.last_generation, m.partial_next, cache_salt).rows;
  return cached;
}

int64_t KvCacheManager::copy_partial_page(RequestPages& s, std::span<const int32_t> next) {
  const PagePool::PartialMatch m = pool_.find_partial(s.last_page, s.last_generation, next, s.salt);
  if (m.page == kNoPage) return 0;
  pool_.acquire(m.page);  // so that allocate() cannot evict it
  const int32_t page = pool_.allocate();
  if (page != kNoPage) {
    config_.copy_rows(m.page, page, m.rows);
    s.table.push_back(page);
    ++s.partial_hits;
    ++prefix_partial_hits_;
  }
  pool_.release(m.page);
  return page == kNoPage ? 0 : m.rows;
}

int64_t KvCacheManager::pages_needed(RequestId id, int64_t num_tokens_total_after) const {
  const auto it = requests_.find(id);
  const int64_t have = it == requests_.end() ? 0 : static_cast<int64_t>(it->second.table.size());
  const int64_t want = (std::max<int64_t>(num_tokens_total_after, 0) + config_.page_size - 1) / config_.page_size;
  return std::max<int64_t>(want - have, 0);
}

bool KvCacheManager::allocate_slots(RequestId id, int64_t num_tokens_total_after, int64_t num_computed_tokens) {
  const bool known = has_request(id);
  RequestPages& s = pages_of(id);
  if (num_computed_tokens >= 0) release_window(s, num_computed_tokens);
  const int64_t need = pages_needed(id, num_tokens_total_after);
  if (need > pool_.num_free()) {
    if (!known) requests_.erase(id);  // a failed first call leaves no trace
    return false;
  }
  for (int64_t i = 0; i < need; ++i) s.table.push_back(pool_.allocate());
  s.num_tokens = std::max(s.num_tokens, num_tokens_total_after);
  return true;
}

void KvCacheManager::cache_full_pages(RequestId id, std::span<const int32_t> tokens, int64_t num_computed_tokens) {
  if (!config_.enable_prefix_caching) return;
  const auto it = requests_.find(id);
  if (it == requests_.end()) return;
  RequestPages& s = it->second;
  if (s.chain_broken) return;
  const size_t ps = static_cast<size_t>(config_.page_size);
  const int64_t computed = std::min<int64_t>(num_computed_tokens, static_cast<int64_t>(tokens.size()));
  const int64_t full = std::min<int64_t>(computed / config_.page_size, static_cast<int64_t>(s.table.size()));
  for (int64_t i = s.num_cached_pages; i < full; ++i) {
    const int32_t page = s.table[static_cast<size_t>(i)];
    if (page == kNullPage) {  // released before it could be cached: the chain cannot continue
      s.chain_broken = true;
      return;
    }
    const auto toks = tokens.subspan(static_cast<size_t>(i) * ps, ps);
    const uint64_t h = config_.hash_fn(s.last_hash, toks, s.salt);
    int32_t canonical = pool_.find_cached(h, s.last_page, s.last_generation, toks, s.salt);
    if (canonical == kNoPage) {
      pool_.register_page(page, h, s.last_page, s.last_generation, toks, s.salt);
      canonical = page;
    }
    // else: the same content is cached already (computed twice); that page stays
    // the chain's name and this one stays uncached.
    s.last_hash = h;
    s.last_page = canonical;
    s.last_generation = pool_.page(canonical).generation;
    s.num_cached_pages = i + 1;
  }
}

void KvCacheManager::release_window(RequestPages& s, int64_t num_computed_tokens) {
  if (config_.sliding_window <= 0) return;
  const int64_t first_needed = num_computed_tokens - config_.sliding_window + 1;
  if (first_needed <= 0) return;
  const int64_t limit = std::min<int64_t>(first_needed / config_.page_size, static_cast<int64_t>(s.table.size()));
  for (int64_t j = s.num_released; j < limit; ++j) {
    int32_t& page = s.table[static_cast<size_t>(j)];
    if (page == kNullPage) continue;
    if (j >= s.num_cached_pages) s.chain_broken = true;
    pool_.release(page);
    page = kNullPage;
    ++s.window_released;
    ++window_released_pages_;
  }
  s.num_released = std::max(s.num_released, limit);
}

void KvCacheManager::free(RequestId id, bool preempted) {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return;
  const auto& table = it->second.table;
  int64_t released = 0;
  for (auto p = table.rbegin(); p != table.rend(); ++p) {  // tail first
    if (*p == kNullPage) continue;
    pool_.release(*p);
    ++released;
  }
  if (preempted) {
    ++preempted_requests_;
    preempted_pages_ += released;
  }
  requests_.erase(it);
}

void KvCacheManager::cancel_lookup(RequestId id) {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return;
  prefix_query_tokens_ -= it->second.looked_up_tokens;
  prefix_hit_tokens_ -= it->second.hit_tokens;
  prefix_partial_hits_ -= it->second.partial_hits;
  window_released_pages_ -= it->second.window_released;
  free(id);
}

const std::vector<int32_t>& KvCacheManager::page_table(RequestId id) const {
  static const std::vector<int32_t> kEmpty;
  const auto it = requests_.find(id);
  return it == requests_.end() ? kEmpty : it->second.table;
}

KvUsage KvCacheManager::usage() const {
  KvUsage u;
  u.pages_total = pool_.num_usable_pages();
  u.pages_in_use = pool_.num_in_use();
  u.pages_free = pool_.num_free();
  u.pages_cached_free = pool_.num_cached_free();
  u.usage_ratio = u.pages_total > 0 ? static_cast<double>(u.pages_in_use) / static_cast<double>(u.pages_total) : 0;
  u.prefix_query_tokens = prefix_query_tokens_;
  u.prefix_hit_tokens = prefix_hit_tokens_;
  u.prefix_partial_hits = prefix_partial_hits_;
  u.evictions = pool_.evictions();
  u.preempted_requests = preempted_requests_;
  u.preempted_pages = preempted_pages_;
  u.window_released_pages = window_released_pages_;
  u.num_requests = static_cast<int64_t>(requests_.size());
  for (const auto& [id, s] : requests_) {
    const int64_t held = static_cast<int64_t>(s.table.size()) - s.num_released;
    const int64_t slots = held * config_.page_size;
    const int64_t tokens = std::max<int64_t>(s.num_tokens - s.num_released * config_.page_size, 0);
    u.allocated_slots += slots;
    u.unused_slots += std::max<int64_t>(slots - tokens, 0);
  }
  return u;
}

Status KvCacheManager::check_invariants() const {
  const int64_t n = pool_.num_pages();
  auto fail = [](const std::string& m) { return Status::internal("kvpool invariant: " + m); };
  if (pool_.errors() != 0) return fail(std::to_string(pool_.errors()) + " bad releases (double free)");

  // Reference counts must equal the number of table entries naming the page.
  std::vector<int64_t> refs(static_cast<size_t>(n), 0);
  for (const auto& [id, s] : requests_) {
    for (int32_t p : s.table) {
      if (p < 0 || p >= n)
        return fail("table of request " + std::to_string(id) + " holds bad page " + std::to_string(p));
      if (p != kNullPage) ++refs[static_cast<size_t>(p)];
    }
  }
  const PageInfo& null_page = pool_.page(kNullPage);
  if (null_page.ref_count != 0 || null_page.in_free_list || null_page.hashed) return fail("null page was used");

  // Free list: well linked, no repeats, uncached pages first, cached ones by tick.
  std::vector<char> seen(static_cast<size_t>(n), 0);
  int64_t count = 0, cached = 0;
  int32_t prev = kNoPage;
  bool in_cached_part = false;
  uint64_t last_tick = 0;
  for (int32_t p = pool_.free_queue().front(); p != kNoPage; p = pool_.free_queue().next(p)) {
    if (p <= kNullPage || p >= n) return fail("free list holds bad page " + std::to_string(p));
    if (seen[static_cast<size_t>(p)]) return fail("page " + std::to_string(p) + " is twice in the free list");
    seen[static_cast<size_t>(p)] = 1;
    const PageInfo& b = pool_.page(p);
    if (b.prev_free != prev) return fail("free list back link broken at page " + std::to_string(p));
    if (!b.in_free_list) return fail("page " + std::to_string(p) + " in the free list but not flagged");
    if (b.hashed) {
      if (in_cached_part && b.free_tick <= last_tick) return fail("free list not in LRU order at " + std::to_string(p));
      in_cached_part = true;
      last_tick = b.free_tick;
      ++cached;
    } else if (in_cached_part) {
      return fail("uncached page " + std::to_string(p) + " behind cached pages in the free list");
    }
    prev = p;
    if (++count > n) return fail("free list has a cycle");
  }
  if (count != pool_.free_queue().size()) return fail("free list size mismatch");
  if (cached != pool_.num_cached_free()) return fail("cached-free count mismatch");

  int64_t hashed = 0;
  for (int32_t p = 1; p < n; ++p) {
    const PageInfo& b = pool_.page(p);
    const bool free = seen[static_cast<size_t>(p)] != 0;
    if (free == (b.ref_count > 0)) return fail("page " + std::to_string(p) + " is not exactly one of free / in use");
    if (b.in_free_list != free) return fail("page " + std::to_string(p) + " flagged free but not listed");
    if (b.ref_count != refs[static_cast<size_t>(p)]) {
      return fail("page " + std::to_string(p) + " ref_count " + std::to_string(b.ref_count) + " but " +
                  std::to_string(refs[static_cast<size_t>(p)]) + " tables hold it");
    }
    if (b.hashed) ++hashed;
  }
  // Index: exactly the cached pages, each under its own hash.
  if (static_cast<int64_t>(pool_.index().size()) != hashed) return fail("index size differs from cached pages");
  for (const auto& [h, p] : pool_.index().entries()) {
    if (p <= kNullPage || p >= n) return fail("index holds bad page");
    const PageInfo& b = pool_.page(p);
    if (!b.hashed || b.hash != h) return fail("index entry for page " + std::to_string(p) + " has a stale hash");
  }
  // Parent index: the same pages, each under its parent.
  if (static_cast<int64_t>(pool_.children().size()) != hashed)
    return fail("parent index size differs from cached pages");
  for (const auto& [key, p] : pool_.children().entries()) {
    if (p <= kNullPage || p >= n) return fail("parent index holds bad page");
    const PageInfo& b = pool_.page(p);
    if (!b.hashed || PagePool::child_key(b.parent, b.parent_generation) != key)
      return fail("parent index entry for page " + std::to_string(p) + " is stale");
  }
  return Status::ok();
}

}  // namespace pagoda
