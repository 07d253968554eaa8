// The /v1/embeddings request and response bodies (OpenAI's shapes): parsing
// with every error naming its field, and the response's data items (float
// lists or base64 of little-endian float32, truncated to `dimensions` and
// renormalized when asked).
//
// Functions only; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/openai_protocol.h"

namespace pagoda {

struct EmbeddingRequest {
  std::string model;                     // "" = the served model
  std::vector<CompletionPrompt> inputs;  // `input`: strings or token-id lists
  bool base64 = false;                   // encoding_format "base64" (else "float")
  std::optional<int64_t> dimensions;     // truncate to this many and renormalize
  std::string user;
};

struct EmbeddingLimits {
  int max_inputs = 2048;      // OpenAI's limit
  int64_t max_ids = 1 << 20;  // token ids over all inputs
  int64_t hidden_size = 0;    // the model's: `dimensions` may not exceed it
  int64_t max_model_len = 0;  // tokens per input
};

// Parses a /v1/embeddings body: `input` (a string, token ids, or a list of
// strings or of token-id lists), `model`, `encoding_format`, `dimensions`,
// `user`. Unknown fields are returned in *ignored (a warning, as the
// generation routes do).
bool parse_embedding_request(const std::string& body, const EmbeddingLimits& limits, EmbeddingRequest* out,
                             std::vector<std::string>* ignored, ApiError* err);

// One `data` item: `vec` (L2-normalized) truncated to `dimensions` and
// renormalized when given, as floats or base64.
nlohmann::json embedding_item(int index, std::vector<float> vec, const EmbeddingRequest& req);

// Standard base64 (with padding) of raw bytes.
std::string base64_encode(const void* data, size_t size);

}  // namespace pagoda
