// KvCacheManager and PagePool scenarios: prefix sharing, partial-page hits
// (rows copied), caching after finish, LRU eviction of whole chains (tail first), cache_salt separation,
// injected hash collisions, all-or-nothing allocation, the sliding window and
// fragmentation under random sequence lengths.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>

#include "kvpool/kv_cache_manager.h"

using namespace pagoda;

namespace {

using CopyFn = std::function<void(int32_t, int32_t, int)>;

std::unique_ptr<KvCacheManager> make(int page_size, int64_t num_pages, PageHashFn fn = &default_page_hash,
                                     int64_t window = 0, CopyFn copy = {}) {
  KvCacheConfig c;
  c.page_size = page_size;
  c.num_pages = num_pages;
  c.hash_fn = fn;
  c.sliding_window = window;
  c.copy_rows = std::move(copy);
  auto m = KvCacheManager::create(c);
  REQUIRE(m.is_ok());
  return std::move(m).value();
}

std::vector<int32_t> seq(int32_t start, int n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

std::vector<int32_t> cat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Runs a whole prompt the way the scheduler would: lookup, allocate, compute, cache.
int64_t prefill(KvCacheManager& m, RequestId id, const std::vector<int32_t>& prompt, std::string_view salt = {}) {
  const int64_t hit = m.lookup_prefix(id, prompt, salt);
  REQUIRE(m.allocate_slots(id, static_cast<int64_t>(prompt.size()), hit));
  m.cache_full_pages(id, prompt, static_cast<int64_t>(prompt.size()));
  REQUIRE(m.check_invariants().is_ok());
  return hit;
}

std::vector<int32_t> head(const std::vector<int32_t>& t, size_t n) {
  return {t.begin(), t.begin() + static_cast<ptrdiff_t>(n)};
}

uint64_t constant_hash(uint64_t, std::span<const int32_t>, std::string_view) { return 42; }
}  // namespace

TEST_CASE("kvpool: create rejects bad configs naming the field", "[kvpool][manager]") {
  KvCacheConfig c;
  c.num_pages = 1;
  auto r = KvCacheManager::create(c);
  REQUIRE_FALSE(r.is_ok());
  REQUIRE(r.status().message().find("kv.num_pages") != std::string::npos);
  c.num_pages = 10;
  c.page_size = 0;
  REQUIRE(KvCacheManager::create(c).status().message().find("kv.page_size") != std::string::npos);
}

TEST_CASE("kvpool: two requests with a common 3-page prefix share the same 3 pages", "[kvpool][manager]") {
  auto m = make(4, 32);
  const auto common = seq(100, 12);
  const auto a = cat(common, {1, 2, 3});
  const auto b = cat(common, {7, 8, 9, 10, 11});
  REQUIRE(prefill(*m, 1, a) == 0);
  REQUIRE(prefill(*m, 2, b) == 12);
  const auto& ta = m->page_table(1);
  const auto& tb = m->page_table(2);
  REQUIRE(ta.size() == 4);
  REQUIRE(tb.size() == 5);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(ta[i] == tb[i]);
    REQUIRE(m->pool().page(ta[i]).ref_count == 2);
  }
  REQUIRE(ta[3] != tb[3]);
  const std::vector<int32_t> shared(ta.begin(), ta.begin() + 3);

  // Both finish: the pages stay cached, and a third request hits them.
  m->free(1);
  m->free(2);
  REQUIRE(m->check_invariants().is_ok());
  auto u = m->usage();
  REQUIRE(u.pages_in_use == 0);
  REQUIRE(u.pages_cached_free >= 3);
  const auto c = cat(common, {42});
  REQUIRE(m->lookup_prefix(3, c) == 12);
  REQUIRE(m->page_table(3) == shared);
  u = m->usage();
  REQUIRE(u.prefix_hit_tokens == 24);
  REQUIRE(u.prefix_query_tokens == static_cast<int64_t>(a.size() + b.size() + c.size()));
  REQUIRE(m->check_invariants().is_ok());
}

TEST_CASE("kvpool: a hit is capped so the last prompt token is computed", "[kvpool][manager]") {
  auto m = make(4, 32);
  const auto p = seq(0, 12);  // exactly three full pages
  prefill(*m, 1, cat(p, {99}));
  REQUIRE(m->lookup_prefix(2, p) == 8);  // not 12: token 11 must be computed for its logits
  REQUIRE(m->lookup_prefix(3, head(p, 1)) == 0);
  REQUIRE(m->lookup_prefix(4, {}) == 0);
  // A second lookup on a request already holding pages changes nothing.
  REQUIRE(m->lookup_prefix(2, cat(p, {99})) == 0);
  REQUIRE(m->page_table(2).size() == 2);
  REQUIRE(m->check_invariants().is_ok());
}

TEST_CASE("kvpool: a page matching only in its first rows lends them by copy", "[kvpool][manager]") {
  std::vector<std::tuple<int32_t, int32_t, int>> copies;
  auto m = make(4, 16, &default_page_hash, 0,
                [&](int32_t src, int32_t dst, int rows) { copies.emplace_back(src, dst, rows); });
  const auto a = seq(100, 10);  // pages [100..103] [104..107] full, [108 109] partial
  REQUIRE(prefill(*m, 1, a) == 0);
  const std::vector<int32_t> ta = m->page_table(1);
  REQUIRE(copies.empty());

  // One full page plus the first two rows of a's second page.
  const auto b = cat(head(a, 6), seq(500, 5));
  REQUIRE(m->lookup_prefix(2, b) == 6);
  const std::vector<int32_t> tb = m->page_table(2);
  REQUIRE(tb.size() == 2);
  REQUIRE(tb[0] == ta[0]);
  REQUIRE(tb[1] != ta[1]);
  REQUIRE(copies == std::vector<std::tuple<int32_t, int32_t, int>>{{ta[1], tb[1], 2}});
  REQUIRE(m->pool().page(tb[1]).ref_count == 1);  // the request's own page, written from row 2 on
  REQUIRE_FALSE(m->pool().page(tb[1]).hashed);
  REQUIRE(m->pool().page(ta[1]).ref_count == 1);  // the source is not held
  REQUIRE(m->allocate_slots(2, static_cast<int64_t>(b.size()), 6));
  REQUIRE(m->page_table(2).size() == 3);
  m->cache_full_pages(2, b, static_cast<int64_t>(b.size()));
  REQUIRE(m->check_invariants().is_ok());
  // b's second page is now cached under its own content: a prompt equal to b hits it whole.
  REQUIRE(m->lookup_prefix(3, cat(head(b, 8), {1})) == 8);
  REQUIRE(m->page_table(3) == head(m->page_table(2), 2));

  // The cap: a prompt of a's first 7 tokens reuses at most 6.
  copies.clear();
  REQUIRE(m->lookup_prefix(4, head(a, 7)) == 6);
  REQUIRE(copies.size() == 1);
  REQUIRE(std::get<2>(copies[0]) == 2);
  // A first page can lend rows too, but only to the same cache_salt.
  REQUIRE(m->lookup_prefix(5, cat(head(a, 3), {900, 901})) == 3);
  REQUIRE(m->page_table(5).size() == 1);
  REQUIRE(m->lookup_prefix(6, cat(head(a, 3), {900, 901}), "tenant") == 0);
  REQUIRE(m->page_table(6).empty());
  // No match at all: no copy, no page.
  copies.clear();
  REQUIRE(m->lookup_prefix(7, seq(700, 9)) == 0);
  REQUIRE(copies.empty());
  REQUIRE(m->page_table(7).empty());

  // Finished requests' pages still lend rows, and the copy's page is released like any other.
  for (RequestId id = 1; id <= 7; ++id) m->free(id);
  REQUIRE(m->check_invariants().is_ok());
  REQUIRE(m->usage().pages_in_use == 0);
  REQUIRE(m->lookup_prefix(8, cat(head(a, 5), {1, 2})) == 5);
  const auto u = m->usage();
  REQUIRE(u.prefix_partial_hits == 4);  // requests 2, 4, 5 and 8
  REQUIRE(u.prefix_hit_tokens == 6 + 8 + 6 + 3 + 5);
  m->free(8);
  REQUIRE(m->check_invariants().is_ok());

  // Without a copy function only whole pages are shared.
  auto plain = make(4, 16);
  prefill(*plain, 1, a);
  REQUIRE(plain->lookup_prefix(2, b) == 4);
  REQUIRE(plain->usage().prefix_partial_hits == 0);
}

TEST_CASE("kvpool: cancel_lookup gives the pages back and withdraws the lookup from the statistics",
          "[kvpool][manager]") {
  int copies = 0;
  auto m = make(4, 16, &default_page_hash, 0, [&](int32_t, int32_t, int) { ++copies; });
  const auto a = seq(100, 12);  // three full pages cached
  prefill(*m, 1, a);
  m->free(1);
  const KvUsage before = m->usage();
  // Two whole pages and two rows of a partly matching third (copied into a page of its own).
  const auto prompt = cat(head(a, 10), seq(500, 3));
  REQUIRE(m->lookup_prefix(2, prompt) == 10);
  REQUIRE(copies == 1);
  const KvUsage looked = m->usage();
  CHECK(looked.pages_in_use == 3);
  CHECK(looked.prefix_query_tokens == before.prefix_query_tokens + 13);
  CHECK(looked.prefix_hit_tokens == before.prefix_hit_tokens + 10);
  CHECK(looked.prefix_partial_hits == before.prefix_partial_hits + 1);
  m->cancel_lookup(2);
  const KvUsage after = m->usage();
  CHECK_FALSE(m->has_request(2));
  CHECK(after.pages_in_use == 0);
  CHECK(after.prefix_query_tokens == before.prefix_query_tokens);
  CHECK(after.prefix_hit_tokens == before.prefix_hit_tokens);
  CHECK(after.prefix_partial_hits == before.prefix_partial_hits);
  REQUIRE(m->check_invariants().is_ok());
  // The retried lookup finds the same prefix and counts once.
  CHECK(m->lookup_prefix(2, prompt) == 10);
  CHECK(m->usage().prefix_hit_tokens == before.prefix_hit_tokens + 10);
  m->cancel_lookup(99);  // unknown ids are ignored
  m->free(2);
  REQUIRE(m->check_invariants().is_ok());
}

TEST_CASE("kvpool: cancel_lookup also withdraws the window releases of a failed allocation", "[kvpool][window]") {
  auto m = make(4, 1 + 12, &default_page_hash, /*window=*/8);
  const auto a = seq(100, 24);  // six full pages, cached
  prefill(*m, 1, a);
  m->free(1);
  REQUIRE(m->lookup_prefix(3, cat(a, seq(700, 4))) == 24);  // another holder of the six pages
  REQUIRE(m->allocate_slots(99, 24));                       // and no free page left
  const KvUsage before = m->usage();
  REQUIRE(m->lookup_prefix(2, cat(a, seq(500, 8))) == 24);
  // Computing from position 24 needs nothing before position 17: pages 0-3
  // leave the table, then the two new pages do not fit.
  CHECK_FALSE(m->allocate_slots(2, 32, 24));
  CHECK(m->usage().window_released_pages == before.window_released_pages + 4);
  m->cancel_lookup(2);
  const KvUsage after = m->usage();
  CHECK(after.window_released_pages == before.window_released_pages);
  CHECK(after.prefix_query_tokens == before.prefix_query_tokens);
  CHECK(after.pages_in_use == before.pages_in_use);
  REQUIRE(m->check_invariants().is_ok());
  m->free(3);
  m->free(99);
  CHECK(m->usage().pages_in_use == 0);
}

TEST_CASE("kvpool: probe_prefix predicts lookup_prefix without taking anything", "[kvpool][manager]") {
  int copies = 0;
  auto m = make(4, 16, &default_page_hash, 0, [&](int32_t, int32_t, int) { ++copies; });
  const auto a = seq(100, 10);
  prefill(*m, 1, a);
  m->free(1);
  const std::vector<std::pair<std::vector<int32_t>, std::string>> prompts = {
      {a, ""},                             // two whole pages (the last token is never a hit)
      {cat(head(a, 6), seq(500, 5)), ""},  // a page and two rows of the next
      {head(a, 7), ""},                    // the cap
      {cat(head(a, 3), {900, 901}), ""},   // rows of a first page
      {cat(head(a, 3), {900, 901}), "tenant"},
      {seq(700, 9), ""},  // nothing
  };
  RequestId id = 10;
  for (const auto& [prompt, salt] : prompts) {
    const KvUsage before = m->usage();
    const int64_t predicted = m->probe_prefix(prompt, salt);
    const KvUsage after = m->usage();
    CHECK(copies == 0);
    CHECK(after.pages_in_use == before.pages_in_use);
    CHECK(after.prefix_query_tokens == before.prefix_query_tokens);
    CHECK(after.prefix_hit_tokens == before.prefix_hit_tokens);
    CHECK(m->lookup_prefix(id, prompt, salt) == predicted);
    m->free(id++);
    copies = 0;
  }
  CHECK(m->probe_prefix(a) == 8);
  KvCacheConfig c;
  c.page_size = 4;
  c.num_pages = 16;
  c.enable_prefix_caching = false;
  auto disabled = KvCacheManager::create(c);
  REQUIRE(disabled.is_ok());
  CHECK(disabled.value()->probe_prefix(a) == 0);
}

TEST_CASE("kvpool: a partial-page hit needs a free page and never evicts its own source", "[kvpool][manager]") {
  std::vector<std::tuple<int32_t, int32_t, int>> copies;
  auto m = make(4, 5, &default_page_hash, 0,
                [&](int32_t src, int32_t dst, int rows) { copies.emplace_back(src, dst, rows); });
  const auto a = seq(100, 8);
  prefill(*m, 1, a);                     // a0, a1: cached, still held
  REQUIRE(m->allocate_slots(9, 8, -1));  // the last two free pages
  REQUIRE(m->lookup_prefix(2, cat(head(a, 6), {1, 2})) == 4);
  REQUIRE(copies.empty());
  REQUIRE(m->page_table(2).size() == 1);
  m->free(2);
  m->free(9);
  REQUIRE(m->check_invariants().is_ok());

  // Free list [a1, a0, c] (a1 least recently used): the copy must not take a1 itself.
  prefill(*m, 4, seq(300, 4));
  m->free(1);
  m->free(4);
  REQUIRE(m->allocate_slots(9, 4, -1));  // the one uncached page
  const int32_t a1 = m->pool().free_queue().front();
  REQUIRE(m->lookup_prefix(3, cat(head(a, 6), {1, 2})) == 6);
  REQUIRE(copies.size() == 1);
  REQUIRE(std::get<0>(copies[0]) == a1);
  REQUIRE(std::get<1>(copies[0]) != a1);
  REQUIRE(m->pool().page(a1).hashed);  // still cached
  REQUIRE(m->check_invariants().is_ok());
}

TEST_CASE("kvpool: under pressure the least recently used chain is evicted first, tail first", "[kvpool][manager]") {
  auto m = make(4, 9);  // 8 usable pages
  const auto x = seq(100, 12), y = seq(200, 12);
  prefill(*m, 1, x);  // 3 full pages, cached
  prefill(*m, 2, y);
  m->free(1);  // X is now older than Y
  m->free(2);
  REQUIRE(m->usage().pages_cached_free == 6);

  SECTION("one page: X's tail goes, its head stays") {
    REQUIRE(m->allocate_slots(3, 4 * 3));  // takes the 2 uncached pages and X's tail page
    REQUIRE(m->usage().evictions == 1);
    REQUIRE(m->lookup_prefix(4, cat(x, {1})) == 8);
    REQUIRE(m->lookup_prefix(5, cat(y, {1})) == 12);
  }
  SECTION("three pages: all of X, none of Y") {
    REQUIRE(m->allocate_slots(3, 4 * 5));
    REQUIRE(m->usage().evictions == 3);
    REQUIRE(m->lookup_prefix(4, cat(x, {1})) == 0);
    REQUIRE(m->lookup_prefix(5, cat(y, {1})) == 12);
  }
  SECTION("touching X makes Y the older chain") {
    REQUIRE(m->lookup_prefix(6, cat(x, {1})) == 12);
    m->free(6);
    REQUIRE(m->allocate_slots(3, 4 * 5));
    REQUIRE(m->lookup_prefix(4, cat(x, {1})) == 12);
    REQUIRE(m->lookup_prefix(5, cat(y, {1})) == 0);
  }
  REQUIRE(m->check_invariants().is_ok());
}

TEST_CASE("kvpool: cache_salt separates tenants", "[kvpool][manager]") {
  auto m = make(4, 32);
  const auto p = seq(0, 17);
  prefill(*m, 1, p, "tenant-a");
  REQUIRE(m->lookup_prefix(2, p, "tenant-b") == 0);
  REQUIRE(m->lookup_prefix(3, p) == 0);
  REQUIRE(m->lookup_prefix(4, p, "tenant-a") == 16);
  REQUIRE(m->check_invariants().is_ok());
}

TEST_CASE("kvpool: cache_salt separates tenants even when hashes collide", "[kvpool][manager]") {
  auto m = make(4, 32, &constant_hash);
  const auto p = seq(0, 17);
  prefill(*m, 1, p, "tenant-a");
  REQUIRE(m->lookup_prefix(2, p, "tenant-b") == 0);
  REQUIRE(m->lookup_prefix(3, p, "tenant-a") == 16);
}

TEST_CASE("kvpool: hash collisions never serve wrong pages", "[kvpool][manager]") {
  SECTION("every page hashes alike") {
    auto m = make(4, 64, &constant_hash);
    const auto a = seq(0, 13), b = seq(50, 13);
    prefill(*m, 1, a);
    REQUIRE(m->lookup_prefix(2, b) == 0);  // same hash, other tokens
    REQUIRE(m->lookup_prefix(3, a) == 12);
    // Same page tokens behind a different first page: the parent check refuses them.
    const auto c = cat(seq(50, 4), std::vector<int32_t>(a.begin() + 4, a.end()));
    m->free(2);
    REQUIRE(m->lookup_prefix(4, c) == 0);
    prefill(*m, 5, c);
    REQUIRE(m->lookup_prefix(6, c) == 12);
    const auto& t3 = m->page_table(3);
    const auto& t6 = m->page_table(6);
    for (size_t i = 0; i < 3; ++i) REQUIRE(t3[i] != t6[i]);
    REQUIRE(m->check_invariants().is_ok());
  }
}

TEST_CASE("kvpool: PagePool: a parent reused for other content no longer vouches for its child", "[kvpool][pool]") {
  PagePool pool(4, 2);
  const int32_t p = pool.allocate(), q = pool.allocate(), e = pool.allocate();
  const std::vector<int32_t> tp = {1, 2}, tq = {3, 4}, tr = {5, 6};
  pool.register_page(p, 11, kNoPage, 0, tp, "");
  const uint32_t gen_p = pool.page(p).generation;
  pool.register_page(q, 22, p, gen_p, tq, "");
  pool.release(e);  // uncached: front of the free list
  pool.release(p);  // p before q: p is evicted first
  pool.release(q);
  REQUIRE(pool.find_cached(22, p, gen_p, tq, "") == q);
  REQUIRE(pool.allocate() == e);
  REQUIRE(pool.allocate() == p);  // evicted and handed out again
  REQUIRE(pool.evictions() == 1);
  pool.register_page(p, 33, kNoPage, 0, tr, "");
  // q still names page p as its parent, but p now holds other tokens.
  REQUIRE(pool.find_cached(22, p, pool.page(p).generation, tq, "") == kNoPage);
  REQUIRE(pool.find_cached(22, p, gen_p, tq, "") == q);  // only the old generation matches
  REQUIRE(pool.find_cached(11, kNoPage, 0, tp, "") == kNoPage);
  REQUIRE(pool.errors() == 0);
  pool.release(q);  // q is free already: a double free is counted and ignored
  REQUIRE(pool.errors() == 1);
  REQUIRE(pool.num_free() == 1);
  pool.release(kNullPage);
  REQUIRE(pool.errors() == 2);
}

TEST_CASE("kvpool: duplicate computation of a cached prefix keeps one indexed copy", "[kvpool][manager]") {
  auto m = make(4, 64);
  const auto common = seq(0, 12);
  const auto a = cat(common, {7});
  const auto b = cat(cat(common, seq(500, 8)), {1});
  // Both look up before either caches: both miss and compute the same pages.
  REQUIRE(m->lookup_prefix(1, a) == 0);
  REQUIRE(m->lookup_prefix(2, b) == 0);
  REQUIRE(m->allocate_slots(1, 13, 0));
  REQUIRE(m->allocate_slots(2, 21, 0));
  m->cache_full_pages(1, a, 13);
  m->cache_full_pages(2, b, 21);
  REQUIRE(m->pool().index().size() == 5);  // 3 common (from request 1) + 2 of b's own
  REQUIRE(m->check_invariants().is_ok());
  // b's own pages chain onto request 1's copies, so b's whole prefix is found.
  REQUIRE(m->lookup_prefix(3, b) == 20);
  const auto& t3 = m->page_table(3);
  const auto& t1 = m->page_table(1);
  const auto& t2 = m->page_table(2);
  for (int i = 0; i < 3; ++i) REQUIRE(t3[i] == t1[i]);
  for (int i = 3; i < 5; ++i) REQUIRE(t3[i] == t2[i]);
  REQUIRE(m->check_invariants().is_ok());
}

TEST_CASE("kvpool: allocate_slots is all or nothing", "[kvpool][manager]") {
  auto m = make(4, 5);  // 4 usable pages
  REQUIRE(m->allocate_slots(1, 8));
  REQUIRE_FALSE(m->allocate_slots(2, 12));  // needs 3, 2 free
  REQUIRE(m->page_table(2).empty());
  REQUIRE_FALSE(m->has_request(2));  // a failed first allocation leaves no request behind
  REQUIRE(m->usage().pages_free == 2);
  REQUIRE(m->allocate_slots(1, 16));  // grows request 1 by 2 pages
  REQUIRE(m->page_table(1).size() == 4);
  REQUIRE_FALSE(m->allocate_slots(1, 17));
  REQUIRE(m->page_table(1).size() == 4);
  REQUIRE(m->pages_needed(1, 17) == 1);
  REQUIRE(m->check_invariants().is_ok());
}

TEST_CASE("kvpool: statistics count preemptions, evictions and usage", "[kvpool][manager]") {
  auto m = make(4, 11);  // 10 usable
  REQUIRE(m->allocate_slots(1, 20));
  REQUIRE(m->allocate_slots(2, 6));
  auto u = m->usage();
  REQUIRE(u.pages_total == 10);
  REQUIRE(u.pages_in_use == 7);
  REQUIRE(u.usage_ratio == Approx(0.7));
  REQUIRE(u.allocated_slots == 28);
  REQUIRE(u.unused_slots == 2);
  REQUIRE(u.num_requests == 2);
  m->free(2, /*preempted=*/true);
  m->free(7, true);  // unknown: ignored
  u = m->usage();
  REQUIRE(u.preempted_requests == 1);
  REQUIRE(u.preempted_pages == 2);
  REQUIRE(u.pages_in_use == 5);
  REQUIRE(m->check_invariants().is_ok());
}

TEST_CASE("kvpool: sliding window: a long decode holds at most ceil(W/page_size)+1 pages", "[kvpool][window]") {
  for (auto [window, ps] : {std::pair<int64_t, int>{64, 16}, {50, 16}, {7, 4}, {16, 16}}) {
    auto m = make(ps, 1 + 200, &default_page_hash, window);
    const int64_t max_pages = (window + ps - 1) / ps + 1;
    std::vector<int32_t> tokens = seq(0, 100);
    REQUIRE(m->lookup_prefix(1, tokens) == 0);
    REQUIRE(m->allocate_slots(1, 100, 0));
    m->cache_full_pages(1, tokens, 100);
    for (int64_t n = 100; n < 3000; ++n) {  // decode far past W; n tokens computed
      tokens.push_back(static_cast<int32_t>(n));
      REQUIRE(m->allocate_slots(1, n + 1, n));
      m->cache_full_pages(1, tokens, n + 1);
      const auto& t = m->page_table(1);
      REQUIRE(static_cast<int64_t>(t.size()) == (n + 1 + ps - 1) / ps);  // positions keep their index
      const auto held = std::count_if(t.begin(), t.end(), [](int32_t p) { return p != kNullPage; });
      REQUIRE(held <= max_pages);
      REQUIRE(m->usage().pages_in_use == held);
      // Every position the window still needs is present.
      for (int64_t pos = std::max<int64_t>(0, n - window + 1); pos <= n; pos += 1)
        REQUIRE(t[static_cast<size_t>(pos / ps)] != kNullPage);
    }
    REQUIRE(m->usage().window_released_pages > 0);
    REQUIRE(m->check_invariants().is_ok());
    m->free(1);
    REQUIRE(m->usage().pages_in_use == 0);
    REQUIRE(m->check_invariants().is_ok());
  }
}

TEST_CASE("kvpool: fragmentation: partly filled last pages stay under 4% at page_size 16", "[kvpool][fragmentation]") {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int64_t> len(128, 2048);
  auto m = make(16, 1 + 40000);
  // A churn of sequences: each grows from a prompt to its final length; some
  // finish and new ones start. Sample waste at every step.
  struct Seq {
    RequestId id;
    int64_t len, target;
  };
  std::vector<Seq> live;
  RequestId next = 1;
  double worst = 0, sum = 0;
  int samples = 0;
  for (int step = 0; step < 3000; ++step) {
    while (live.size() < 64) {
      const int64_t target = len(rng);
      const int64_t prompt = std::uniform_int_distribution<int64_t>(1, target)(rng);
      REQUIRE(m->allocate_slots(next, prompt));
      live.push_back({next++, prompt, target});
    }
    for (auto& s : live) {
      s.len = std::min(s.target, s.len + std::uniform_int_distribution<int64_t>(1, 64)(rng));
      REQUIRE(m->allocate_slots(s.id, s.len));
    }
    // Waste measured independently from the tables, and as usage() reports it.
    int64_t slots = 0, tokens = 0;
    for (const auto& s : live) {
      slots += static_cast<int64_t>(m->page_table(s.id).size()) * 16;
      tokens += s.len;
    }
    const auto u = m->usage();
    REQUIRE(u.allocated_slots == slots);
    REQUIRE(u.unused_slots == slots - tokens);
    REQUIRE(u.pages_in_use * 16 == slots);
    const double waste = static_cast<double>(slots - tokens) / static_cast<double>(slots);
    worst = std::max(worst, waste);
    sum += waste;
    ++samples;
    for (size_t i = 0; i < live.size();) {
      if (live[i].len == live[i].target) {
        m->free(live[i].id);
        live[i] = live.back();
        live.pop_back();
      } else {
        ++i;
      }
    }
  }
  std::printf("kvpool fragmentation (page_size 16, lengths U[128,2048], 64 live): mean %.3f%%, worst %.3f%%\n",
              100 * sum / samples, 100 * worst);
  REQUIRE(worst < 0.04);
  REQUIRE(m->check_invariants().is_ok());
}
