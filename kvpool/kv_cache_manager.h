// KvCacheManager: the scheduler's only door to KV memory (vLLM v1 style).
//
// Each request owns a page table: the page ids holding its tokens in order
// (token t lives in page table[t / page_size], slot t % page_size). Tables are
// append-only: a position never changes its page, except that pages the
// sliding window no longer needs are replaced by kNullPage.
//
// The scheduler's flow per request:
//   1. lookup_prefix(id, prompt, salt)   once when a request (re)starts: takes
//      references on the longest chain of cached full pages matching the
//      prompt (capped so the last prompt token is always computed) and returns
//      the number of cached tokens; they start as the request's table. With a
//      copy_rows function, the chain is then extended by a partial page: if a
//      cached page following the chain matches the prompt's next tokens only
//      in its first k < page_size rows, those rows are copied into a fresh page
//      of the request's own (shared pages are never written), worth k tokens.
//   2. allocate_slots(id, total, computed) before each step: make room for
//      `total` tokens, all or nothing (evicting cached free pages LRU first);
//      false means "not now" (preempt someone or wait) and changes nothing.
//   3. cache_full_pages(id, tokens, computed) after each step: registers the
//      pages that became full in the prefix index so others can share them.
//   4. free(id, preempted) when the request finishes or is preempted: pages are
//      released tail-first, so a chain's tail is evicted before its head; a
//      freed page keeps its cached content until the page is reused.
//      cancel_lookup(id) instead when a looked-up request gets no step after
//      all (no room): it also withdraws the lookup from the statistics.
//
// Prefix pages are named by a chained hash (page_hash.h) of the parent page's
// hash, the page's tokens and the request's cache_salt (tenants with
// different salts never share). A hit is verified against the stored tokens,
// the exact parent page and the salt, so a hash collision costs a miss and
// never serves wrong KV.
//
// Owns the PagePool and the per-request tables. Not thread-safe: the engine
// thread alone calls it, except page_size(), config() and num_usable_pages(),
// which are fixed at construction and safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/request_id.h"
#include "common/status.h"
#include "kvpool/page_hash.h"
#include "kvpool/page_pool.h"

namespace pagoda {

struct KvCacheConfig {
  int page_size = 16;                       // tokens per page
  int64_t num_pages = 0;                    // pages in the pool, with the null page 0; >= 2
  bool enable_prefix_caching = true;        // kv.prefix_caching
  int64_t sliding_window = 0;               // attention window W in tokens; 0 = full attention
  PageHashFn hash_fn = &default_page_hash;  // replaceable for tests (collision injection)
  // Copies the first `rows` token slots of KV page src into page dst (every
  // layer, K and V, scales too). Set: partial-page prefix hits (see above);
  // empty: only whole pages are shared.
  std::function<void(int32_t src, int32_t dst, int rows)> copy_rows;
};

// A snapshot for /metrics and the scheduler.
struct KvUsage {
  int64_t pages_total = 0;            // usable pages (the null page excluded)
  int64_t pages_in_use = 0;           // held by at least one request
  int64_t pages_free = 0;             // free, cached or not
  int64_t pages_cached_free = 0;      // free but still holding a cached prefix page
  double usage_ratio = 0;             // pages_in_use / pages_total
  int64_t prefix_query_tokens = 0;    // prompt tokens looked up (cumulative)
  int64_t prefix_hit_tokens = 0;      // of those, served from cache (cumulative)
  int64_t prefix_partial_hits = 0;    // lookups that copied rows of a partly matching page (cumulative)
  int64_t evictions = 0;              // cached pages reused for other content (cumulative)
  int64_t preempted_requests = 0;     // free(id, preempted=true) calls (cumulative)
  int64_t preempted_pages = 0;        // page references they dropped (cumulative)
  int64_t window_released_pages = 0;  // pages dropped by the sliding window (cumulative)
  int64_t num_requests = 0;           // requests currently holding a table
  int64_t allocated_slots = 0;        // slots in the pages requests hold (a shared page per holder)
  int64_t unused_slots = 0;           // of those, beyond each request's tokens (partly filled last pages)
};

class KvCacheManager {
 public:
  // InvalidArgument naming the field if page_size < 1, num_pages < 2 or
  // > INT32_MAX, or sliding_window < 0.
  static Result<std::unique_ptr<KvCacheManager>> create(const KvCacheConfig& config);

  // Finds the request's cached prefix and takes references on those pages,
  // which become the start of its page table. Returns the cached token count:
  // whole pages plus the rows of a partial-page hit (see the flow above;
  // skipped when no page is free for the copy), at most
  // prompt_tokens.size() - 1. Records cache_salt for the request's later
  // cache_full_pages. Does nothing and returns 0 if the request already holds
  // pages (call it before the first allocate_slots).
  int64_t lookup_prefix(RequestId id, std::span<const int32_t> prompt_tokens, std::string_view cache_salt = {});

  // What lookup_prefix would return for these tokens now (assuming a page is
  // free for a partial-page copy), without taking references or counting a
  // lookup in the statistics: lets the scheduler size a request's step
  // before committing to it.
  int64_t probe_prefix(std::span<const int32_t> prompt_tokens, std::string_view cache_salt = {}) const;

  // Grows the request's table to hold num_tokens_total_after tokens. All or
  // nothing: returns false, adding no page, if there are not enough free
  // pages. With a sliding window and num_computed_tokens >= 0, it first
  // releases the pages wholly before the window of the next token to compute
  // (release_window; done even when it then returns false, since those
  // pages are never needed again). Creates the request (empty salt) if unknown
  // and the allocation succeeds.
  bool allocate_slots(RequestId id, int64_t num_tokens_total_after, int64_t num_computed_tokens = -1);

  // New pages allocate_slots(id, total) would need (0 if it fits already).
  int64_t pages_needed(RequestId id, int64_t num_tokens_total_after) const;

  // Registers the request's pages that are full of computed tokens in the
  // prefix index. `tokens` are the request's tokens so far (prompt + output),
  // at least num_computed_tokens of them. No-op without prefix caching.
  void cache_full_pages(RequestId id, std::span<const int32_t> tokens, int64_t num_computed_tokens);

  // Releases all the request's pages, tail first, and forgets the request.
  // `preempted` only feeds the statistics. Unknown ids are ignored.
  void free(RequestId id, bool preempted = false);

  // free() for a request whose lookup_prefix did not lead to a step (no
  // room for it after all; it is looked up again when it is retried): also
  // withdraws that lookup from the prefix statistics, and the pages a failed
  // allocate_slots released from before the sliding window from theirs, so
  // a request waiting for pages is counted once, when it runs.
  void cancel_lookup(RequestId id);

  // The request's table (empty for an unknown request). Valid until the next
  // call that changes this request.
  const std::vector<int32_t>& page_table(RequestId id) const;
  bool has_request(RequestId id) const { return requests_.count(id) != 0; }

  KvUsage usage() const;
  int page_size() const { return config_.page_size; }
  const KvCacheConfig& config() const { return config_; }
  // Pages requests can use (the null page excluded); fixed at construction.
  int64_t num_usable_pages() const { return pool_.num_usable_pages(); }
  const PagePool& pool() const { return pool_; }

  // Full consistency check, O(pages + table entries), for tests: every page is
  // exactly one of free or in use, ref counts equal table references, the free
  // list is well formed and LRU ordered, the index matches the cached pages.
  Status check_invariants() const;

 private:
  // One request's page table and prefix-cache progress.
  struct RequestPages {
    std::vector<int32_t> table;
    std::string salt;
    int64_t num_tokens = 0;              // slots the request asked for (max of allocate_slots)
    int64_t num_cached_pages = 0;        // leading pages whose identity is known (hit or registered)
    uint64_t last_hash = kRootPageHash;  // hash of page num_cached_pages - 1
    int32_t last_page = kNoPage;         // the cached page standing for it (maybe another request's)
    uint32_t last_generation = 0;
    int64_t num_released = 0;   // leading entries released by the sliding window
    bool chain_broken = false;  // a page was released before it was cached
    // What lookup_prefix and the sliding window added to the statistics,
    // for cancel_lookup.
    int64_t looked_up_tokens = 0, hit_tokens = 0, partial_hits = 0, window_released = 0;
  };

  explicit KvCacheManager(const KvCacheConfig& config);
  RequestPages& pages_of(RequestId id) { return requests_[id]; }
  // Sliding window: releases pages that lie wholly before the window of the
  // token at position num_computed_tokens (the next one to compute), so a
  // decoding sequence holds at most ceil(W / page_size) + 1 pages. Their table
  // entries become kNullPage. No-op without a window.
  void release_window(RequestPages& s, int64_t num_computed_tokens);
  // Appends a fresh page holding the first rows of a cached page that matches
  // `next` (the prompt tokens after the whole-page hit) partly; returns the rows.
  int64_t copy_partial_page(RequestPages& s, std::span<const int32_t> next);
  // The cached pages holding the leading whole pages of prompt_tokens (never
  // its last token), in order, with the chain state after the last one, and
  // the tokens after them that a partly matching page may lend rows to (empty
  // when rows cannot be copied).
  struct PrefixMatch {
    std::vector<int32_t> pages;
    uint64_t last_hash = kRootPageHash;
    int32_t last_page = kNoPage;
    uint32_t last_generation = 0;
    std::span<const int32_t> partial_next;
  };
  PrefixMatch match_prefix(std::span<const int32_t> prompt_tokens, std::string_view salt) const;

  KvCacheConfig config_;
  PagePool pool_;
  std::unordered_map<RequestId, RequestPages> requests_;
  int64_t prefix_query_tokens_ = 0;
  int64_t prefix_hit_tokens_ = 0;
  int64_t prefix_partial_hits_ = 0;
  int64_t preempted_requests_ = 0;
  int64_t preempted_pages_ = 0;
  int64_t window_released_pages_ = 0;
};

}  // namespace pagoda
