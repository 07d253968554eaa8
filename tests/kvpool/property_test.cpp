// Randomized property test of KvCacheManager: thousands of random operations
// (new requests with prefix lookups, some withdrawn with cancel_lookup,
// chunked prefill, decode, finish, preempt, memory hogs that force eviction) with every invariant checked after EACH
// operation by a model kept here, independent of the pool's own bookkeeping:
//   - every usable page is exactly one of free or in use;
//   - a page's ref count equals the number of page tables holding it;
//   - the prefix index points only at pages whose written content (the full
//     token prefix and salt, tracked here as "shadow KV") matches;
//   - every prefix hit serves pages whose shadow KV is exactly the prompt's,
//     including a partial page's copied rows;
//   - nothing is written into a page someone else also holds;
//   - the free list is in LRU order of release (by this test's clock), and
//     allocation takes pages from its front;
//   - nothing is freed twice.
// Fixed seeds; runs in well under a second.
#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kvpool/kv_cache_manager.h"

using namespace pagoda;

namespace {

uint64_t colliding_hash(uint64_t, std::span<const int32_t> t, std::string_view) {
  return static_cast<uint64_t>(t[0] + static_cast<int32_t>(t.size())) % 3;  // ignores parent and salt
}

struct Live {
  std::vector<int32_t> tokens;
  int64_t prompt_len = 0;
  int64_t computed = 0;
  int64_t target = 0;
  std::string salt;
};

// What a page's KV was computed from: the writer's salt and its tokens up to
// and including the last slot written.
struct Shadow {
  std::string salt;
  std::vector<int32_t> prefix;
};

class Harness {
 public:
  // partial_pages: give the manager a copy_rows that copies shadow KV, so
  // partial-page hits happen and are checked like whole-page ones.
  Harness(KvCacheConfig config, uint32_t seed, bool partial_pages = false) : rng_(seed), ps_(config.page_size) {
    if (partial_pages) {
      config.copy_rows = [this](int32_t src, int32_t dst, int rows) {
        REQUIRE(src != dst);
        const Shadow& from = shadow_[static_cast<size_t>(src)];
        REQUIRE(from.prefix.size() % static_cast<size_t>(ps_) == 0);  // a full page
        shadow_[static_cast<size_t>(dst)] = Shadow{from.salt, {from.prefix.begin(), from.prefix.end() - ps_ + rows}};
        copied_from_ = src;
      };
    }
    auto m = KvCacheManager::create(config);
    REQUIRE(m.is_ok());
    m_ = std::move(m).value();
    const size_t n = static_cast<size_t>(config.num_pages);
    shadow_.resize(n);
    refs_.assign(n, 0);
    released_at_.assign(n, 0);
    std::uniform_int_distribution<int32_t> tok(0, 3);
    for (auto& t : templates_) {
      t.resize(40);
      for (auto& x : t) x = tok(rng_);
    }
  }

  void run(int ops) {
    for (int i = 0; i < ops; ++i) {
      op_ = i;
      const int r = pick(0, 99);
      if (r < 25) start_request(/*probe_only=*/false);
      else if (r < 35) start_request(/*probe_only=*/true);
      else if (r < 80) step_random();
      else if (r < 93) finish_random();
      else hog();
      check();
    }
    while (!live_.empty()) {
      release_request(live_.begin()->first, false);
      check();
    }
    const auto u = m_->usage();
    REQUIRE(u.pages_in_use == 0);
    REQUIRE(u.preempted_requests == preemptions_);
    REQUIRE(u.prefix_query_tokens == query_tokens_);
    REQUIRE(u.prefix_hit_tokens == hit_tokens_);
    REQUIRE(u.prefix_partial_hits == partial_hits_);
  }

  int64_t hits() const { return hit_tokens_; }
  int64_t partial_hits() const { return partial_hits_; }
  int64_t preemptions() const { return preemptions_; }
  int64_t evictions() const { return m_->usage().evictions; }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::vector<int32_t> free_list() const {
    std::vector<int32_t> out;
    for (int32_t p = m_->pool().free_queue().front(); p != kNoPage; p = m_->pool().free_queue().next(p)) {
      out.push_back(p);
      REQUIRE(out.size() <= shadow_.size());
    }
    return out;
  }

  // Stamps pages whose last reference was just dropped, in release order.
  void note_releases(const std::vector<int32_t>& order) {
    std::vector<int64_t> now(shadow_.size(), 0);
    for (const auto& [id, l] : live_)
      for (int32_t p : m_->page_table(id))
        if (p != kNullPage) ++now[static_cast<size_t>(p)];
    for (int32_t p : order) {
      if (p == kNullPage) continue;
      if (refs_[static_cast<size_t>(p)] > 0 && now[static_cast<size_t>(p)] == 0)
        released_at_[static_cast<size_t>(p)] = ++clock_;
    }
    refs_ = now;
  }

  // allocate_slots with the checks around it: window releases only turn old
  // entries into kNullPage, and new pages come from the front of the free
  // list as it stands after those releases (uncached pages join the front,
  // cached ones the back).
  bool allocate(RequestId id, int64_t total, int64_t computed) {
    const std::vector<int32_t> before = m_->page_table(id);
    std::vector<char> was_hashed(before.size());
    for (size_t i = 0; i < before.size(); ++i)
      was_hashed[i] = before[i] != kNullPage && m_->pool().page(before[i]).hashed;
    const auto fl0 = free_list();
    std::deque<int32_t> expected(fl0.begin(), fl0.end());

    const bool ok = m_->allocate_slots(id, total, computed);

    const auto& after = m_->page_table(id);
    std::vector<int32_t> released;
    for (size_t i = 0; i < before.size(); ++i) {
      if (before[i] == after[i]) continue;
      REQUIRE(after[i] == kNullPage);  // the only change allowed to old entries
      released.push_back(before[i]);
      if (refs_[static_cast<size_t>(before[i])] == 1) {  // this was its last holder
        if (was_hashed[i]) expected.push_back(before[i]);
        else expected.push_front(before[i]);
      }
    }
    note_releases(released);
    if (!ok) {
      REQUIRE(after.size() == before.size());
      return false;
    }
    REQUIRE(static_cast<int64_t>(after.size()) ==
            std::max<int64_t>((total + ps_ - 1) / ps_, static_cast<int64_t>(before.size())));
    const std::vector<int32_t> fresh(after.begin() + static_cast<ptrdiff_t>(before.size()), after.end());
    REQUIRE(fresh.size() <= expected.size());
    for (size_t k = 0; k < fresh.size(); ++k) {
      INFO("op " << op_ << " new page " << k);
      REQUIRE(fresh[k] == expected[k]);
      REQUIRE(m_->pool().page(fresh[k]).ref_count == 1);
      REQUIRE_FALSE(m_->pool().page(fresh[k]).hashed);
      refs_[static_cast<size_t>(fresh[k])] = 1;
    }
    return true;
  }

  // "Computes" tokens [from, to) of a request: writes shadow KV into its pages.
  void write(RequestId id, const Live& l, int64_t from, int64_t to) {
    const auto& table = m_->page_table(id);
    for (int64_t t = from; t < to; ++t) {
      const int32_t p = table[static_cast<size_t>(t / ps_)];
      REQUIRE(p != kNullPage);
      const PageInfo& b = m_->pool().page(p);
      INFO("op " << op_ << " request " << id << " token " << t << " page " << p);
      REQUIRE(b.ref_count == 1);  // never write into a shared page
      REQUIRE_FALSE(b.hashed);
      Shadow& s = shadow_[static_cast<size_t>(p)];
      if (t % ps_ == 0) s = Shadow{l.salt, {}};
      s.prefix.assign(l.tokens.begin(), l.tokens.begin() + t + 1);
    }
  }

  void start_request(bool probe_only) {
    if (live_.size() >= 12) return;
    const RequestId id = next_id_++;
    Live l;
    const auto& tmpl = templates_[static_cast<size_t>(pick(0, 3))];
    const int keep = pick(0, 40);
    l.tokens.assign(tmpl.begin(), tmpl.begin() + keep);
    for (int i = pick(1, 8); i > 0; --i) l.tokens.push_back(pick(0, 3));
    l.prompt_len = static_cast<int64_t>(l.tokens.size());
    l.target = l.prompt_len + pick(0, 24);
    const int s = pick(0, 9);
    l.salt = s < 2 ? "s1" : s < 3 ? "s2" : "";

    copied_from_ = kNoPage;
    const int64_t hit = m_->lookup_prefix(id, l.tokens, l.salt);
    query_tokens_ += l.prompt_len;
    hit_tokens_ += hit;
    REQUIRE(hit <= l.prompt_len - 1);
    const auto table = m_->page_table(id);
    REQUIRE(static_cast<int64_t>(table.size()) == (hit + ps_ - 1) / ps_);
    REQUIRE((hit % ps_ != 0) == (copied_from_ != kNoPage));
    for (size_t i = 0; i < table.size(); ++i) {
      const Shadow& sh = shadow_[static_cast<size_t>(table[i])];
      INFO("op " << op_ << " hit page " << table[i] << " at " << i);
      REQUIRE(sh.salt == l.salt);
      const int64_t end = std::min<int64_t>(static_cast<int64_t>(i + 1) * ps_, hit);
      REQUIRE(sh.prefix == std::vector<int32_t>(l.tokens.begin(), l.tokens.begin() + end));
    }
    if (hit % ps_ != 0) {  // the copy is the request's own page; its source was touched (most recently used)
      const PageInfo& own = m_->pool().page(table.back());
      REQUIRE(own.ref_count == 1);
      REQUIRE_FALSE(own.hashed);
      ++partial_hits_;
      if (refs_[static_cast<size_t>(copied_from_)] == 0) released_at_[static_cast<size_t>(copied_from_)] = ++clock_;
    }
    l.computed = hit;
    live_[id] = l;
    note_releases({});
    if (probe_only) {
      if (pick(0, 1) == 0) {
        release_request(id, false);
      } else {  // no room after all: the lookup is withdrawn from the statistics
        query_tokens_ -= l.prompt_len;
        hit_tokens_ -= hit;
        if (hit % ps_ != 0) --partial_hits_;
        release_request(id, false, /*cancel=*/true);
      }
      return;
    }
    advance(id);
  }

  // One scheduler step for the request: a prefill chunk or one decode token.
  void advance(RequestId id) {
    Live& l = live_[id];
    int64_t total;
    if (l.computed < l.prompt_len) {
      total = std::min<int64_t>(l.prompt_len, l.computed + pick(1, 16));
    } else {
      l.tokens.push_back(pick(0, 3));
      total = static_cast<int64_t>(l.tokens.size());
    }
    if (!allocate(id, total, l.computed)) {
      if (l.computed >= l.prompt_len) l.tokens.pop_back();
      release_request(id, /*preempted=*/true);
      return;
    }
    write(id, l, l.computed, total);
    l.computed = total;
    m_->cache_full_pages(id, l.tokens, l.computed);
    if (l.computed >= l.prompt_len && static_cast<int64_t>(l.tokens.size()) >= l.target) release_request(id, false);
  }

  void step_random() {
    if (live_.empty()) return;
    auto it = live_.begin();
    std::advance(it, pick(0, static_cast<int>(live_.size()) - 1));
    advance(it->first);
  }

  void finish_random() {
    if (live_.empty()) return;
    auto it = live_.begin();
    std::advance(it, pick(0, static_cast<int>(live_.size()) - 1));
    release_request(it->first, false);
  }

  // A burst of memory demand that forces evictions, released at once.
  void hog() {
    const RequestId id = next_id_++;
    live_[id] = Live{};
    allocate(id, static_cast<int64_t>(pick(1, 30)) * ps_, -1);
    release_request(id, false);
  }

  void release_request(RequestId id, bool preempted, bool cancel = false) {
    const std::vector<int32_t> table = m_->page_table(id);
    if (cancel) m_->cancel_lookup(id);
    else m_->free(id, preempted);
    live_.erase(id);
    if (preempted) ++preemptions_;
    note_releases(std::vector<int32_t>(table.rbegin(), table.rend()));  // tail first
    REQUIRE(m_->page_table(id).empty());
  }

  void check() {
    INFO("after op " << op_);
    const Status st = m_->check_invariants();
    INFO(st.to_string());
    REQUIRE(st.is_ok());
    const PagePool& pool = m_->pool();
    REQUIRE(pool.errors() == 0);  // nothing freed twice
    const auto fl = free_list();
    std::vector<char> is_free(shadow_.size(), 0);
    for (int32_t p : fl) {
      REQUIRE(p != kNullPage);
      REQUIRE_FALSE(is_free[static_cast<size_t>(p)]);
      is_free[static_cast<size_t>(p)] = 1;
    }
    // Ref counts from the tables, and free XOR in use.
    std::vector<int64_t> refs(shadow_.size(), 0);
    for (const auto& [id, l] : live_)
      for (int32_t p : m_->page_table(id))
        if (p != kNullPage) ++refs[static_cast<size_t>(p)];
    for (size_t p = 1; p < shadow_.size(); ++p) {
      INFO("page " << p);
      REQUIRE(pool.page(static_cast<int32_t>(p)).ref_count == refs[p]);
      REQUIRE((refs[p] > 0) != (is_free[p] != 0));
    }
    REQUIRE(refs == refs_);
    // LRU: uncached pages first, then cached ones in the order they were released.
    bool cached_part = false;
    uint64_t last = 0;
    for (int32_t p : fl) {
      const PageInfo& b = pool.page(p);
      if (!b.hashed) {
        REQUIRE_FALSE(cached_part);
        continue;
      }
      cached_part = true;
      REQUIRE(released_at_[static_cast<size_t>(p)] > last);
      last = released_at_[static_cast<size_t>(p)];
    }
    // The index points only at pages whose content matches.
    for (const auto& [h, p] : pool.index().entries()) {
      const PageInfo& b = pool.page(p);
      const Shadow& sh = shadow_[static_cast<size_t>(p)];
      REQUIRE(b.hashed);
      REQUIRE(b.hash == h);
      REQUIRE(!sh.prefix.empty());
      REQUIRE(sh.prefix.size() % static_cast<size_t>(ps_) == 0);
      const auto toks = pool.page_tokens(p);
      REQUIRE(std::equal(toks.begin(), toks.end(), sh.prefix.end() - ps_));
      if (b.parent == kNoPage) {
        REQUIRE(sh.prefix.size() == static_cast<size_t>(ps_));
        REQUIRE(b.salt == sh.salt);
        REQUIRE(h == m_->config().hash_fn(kRootPageHash, toks, sh.salt));
      }
    }
  }

  std::mt19937 rng_;
  int ps_;
  std::unique_ptr<KvCacheManager> m_;
  std::vector<Shadow> shadow_;
  std::vector<int64_t> refs_;
  std::vector<uint64_t> released_at_;
  uint64_t clock_ = 0;
  std::map<RequestId, Live> live_;
  RequestId next_id_ = 1;
  std::vector<int32_t> templates_[4];
  int64_t query_tokens_ = 0, hit_tokens_ = 0, preemptions_ = 0, partial_hits_ = 0;
  int32_t copied_from_ = kNoPage;  // the source of the last copy_rows call
  int op_ = 0;
};

}  // namespace

TEST_CASE("kvpool: random operations keep every kvpool invariant", "[kvpool][property]") {
  struct Variant {
    const char* name;
    PageHashFn fn;
    int64_t window;
    bool prefix_caching = true;
    bool partial_pages = false;
  };
  const Variant variants[] = {
      {"default hash", &default_page_hash, 0},
      {"colliding hash", &colliding_hash, 0},
      {"sliding window 9", &default_page_hash, 9},
      {"prefix caching off", &default_page_hash, 0, false},
      {"partial pages", &default_page_hash, 0, true, true},
      {"partial pages, colliding hash, window 9", &colliding_hash, 9, true, true},
  };
  uint32_t seed = 20240601;
  for (const auto& v : variants) {
    DYNAMIC_SECTION(v.name) {
      KvCacheConfig c;
      c.page_size = 4;
      c.num_pages = 41;
      c.hash_fn = v.fn;
      c.sliding_window = v.window;
      c.enable_prefix_caching = v.prefix_caching;
      Harness h(c, seed, v.partial_pages);
      h.run(10000);
      // The run must have exercised what it claims to.
      CHECK(h.preemptions() > 0);
      if (v.prefix_caching) {
        CHECK(h.hits() > 0);
        CHECK(h.evictions() > 0);
        CHECK((h.partial_hits() > 0) == v.partial_pages);
      } else {
        CHECK(h.hits() == 0);
        CHECK(h.evictions() == 0);
      }
    }
    ++seed;
  }
}
