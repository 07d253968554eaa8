// RequestLimits: what one request may ask of this engine (context length,
// step budget, KV pool size, vocabulary), copied from the engine's parts when
// it is built and never changed after. validate_request() checks a request
// against them before it reaches the engine thread.
//
// Immutable after construction: any thread may read it (the I/O threads
// validate against it while the engine thread runs steps).
#pragma once

#include <cstdint>

#include "common/status.h"
#include "scheduler/request.h"

namespace pagoda {

struct RequestLimits {
  int64_t max_model_len = 0;           // prompt + output tokens
  int64_t max_num_batched_tokens = 0;  // tokens per step
  bool chunked_prefill = true;         // false: a prompt must fit one step
  int64_t page_size = 0;               // tokens per KV page
  int64_t usable_pages = 0;            // KV pages a request may hold (the pool less the null page)
  int64_t sliding_window = 0;          // 0 = full attention
  int32_t vocab_size = 0;
};

// Checks that `request` could ever run: a non-empty prompt of in-vocabulary
// ids, 1 <= max_tokens, prompt + max_tokens within max_model_len, a prompt
// that fits one step when chunked prefill is off, a whole sequence that fits
// the KV pool, stop_token_ids in the vocabulary, 0 <= min_tokens <=
// max_tokens, and valid sampling parameters. The error names the request
// field (Status::field) and gives the numbers.
Status validate_request(const RequestLimits& limits, const Request& request);

}  // namespace pagoda
