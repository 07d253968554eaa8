#include "server/embedding_request.h"

#include <cmath>
#include <cstring>

namespace pagoda {

namespace {

using json = nlohmann::json;

bool fail(ApiError* err, const std::string& param, const std::string& message) {
  *err = api_error(400, message, "invalid_value", param);
  return false;
}

// One input: a non-empty string or token-id list; `name` says which.
bool parse_input(const json& v, const EmbeddingLimits& lim, const std::string& name, CompletionPrompt* out,
                 ApiError* err) {
  if (v.is_string()) {
    out->text = v.get<std::string>();
    if (out->text->empty()) return fail(err, "input", name + " must not be empty");
    return true;
  }
  if (!v.is_array() || v.empty())
    return fail(err, "input", name + " must be a non-empty string or a non-empty array of token ids");
  if (static_cast<int64_t>(v.size()) > lim.max_model_len)
    return fail(err, "input",
                name + " has " + std::to_string(v.size()) + " tokens, over this model's maximum context length of " +
                    std::to_string(lim.max_model_len));
  for (const json& t : v) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
      return fail(err, "input", name + " as an array must hold non-negative integer token ids");
    out->ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return true;
}

}  // namespace

bool parse_embedding_request(const std::string& body_text, const EmbeddingLimits& lim, EmbeddingRequest* out,
                             std::vector<std::string>* ignored, ApiError* err) {
  const json body = json::parse(body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    *err = api_error(400, "the request body must be a JSON object", "invalid_json");
    return false;
  }
  for (const auto& item : body.items())
    if (item.key() != "input" && item.key() != "model" && item.key() != "encoding_format" &&
        item.key() != "dimensions" && item.key() != "user")
      ignored->push_back(item.key());
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string() || body["model"].get_ref<const std::string&>().size() > 256)
      return fail(err, "model", "'model' must be a string of at most 256 bytes");
    out->model = body["model"].get<std::string>();
  }
  if (!body.contains("input") || body["input"].is_null()) return fail(err, "input", "'input' is required");
  const json& in = body["input"];
  const bool list = in.is_array() && !in.empty() && (in[0].is_string() || in[0].is_array());
  if (!list) {
    out->inputs.emplace_back();
    if (!parse_input(in, lim, "'input'", &out->inputs.back(), err)) return false;
  } else {
    if (static_cast<int64_t>(in.size()) > lim.max_inputs)
      return fail(
          err, "input",
          "'input' has " + std::to_string(in.size()) + " items, over the limit of " + std::to_string(lim.max_inputs));
    int64_t ids = 0;
    for (const json& one : in) {
      out->inputs.emplace_back();
      const std::string name = "'input[" + std::to_string(out->inputs.size() - 1) + "]'";
      if (!parse_input(one, lim, name, &out->inputs.back(), err)) return false;
      ids += static_cast<int64_t>(out->inputs.back().ids.size());
      if (ids > lim.max_ids)
        return fail(err, "input", "'input' has more than " + std::to_string(lim.max_ids) + " token ids");
    }
  }
  if (body.contains("encoding_format") && !body["encoding_format"].is_null()) {
    const json& f = body["encoding_format"];
    if (!f.is_string() || (f != "float" && f != "base64"))
      return fail(err, "encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
    out->base64 = f == "base64";
  }
  if (body.contains("dimensions") && !body["dimensions"].is_null()) {
    const json& d = body["dimensions"];
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > lim.hidden_size)
      return fail(err, "dimensions",
                  "'dimensions' must be an integer from 1 to " + std::to_string(lim.hidden_size) +
                      " (this model's embedding size)");
    out->dimensions = d.get<int64_t>();
  }
  if (body.contains("user") && !body["user"].is_null()) {
    if (!body["user"].is_string() || body["user"].get_ref<const std::string&>().size() > 1024)
      return fail(err, "user", "'user' must be a string of at most 1024 bytes");
    out->user = body["user"].get<std::string>();
  }
  return true;
}

std::string base64_encode(const void* data, size_t size) {
  static const char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += kTable[v & 63];
  }
  if (i < size) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < size ? uint32_t{p[i + 1]} << 8 : 0);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += i + 1 < size ? kTable[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

json embedding_item(int index, std::vector<float> vec, const EmbeddingRequest& req) {
  if (req.dimensions && static_cast<size_t>(*req.dimensions) < vec.size()) {
    vec.resize(static_cast<size_t>(*req.dimensions));
    double norm = 0;
    for (float x : vec) norm += static_cast<double>(x) * x;
    norm = std::sqrt(norm);
    if (norm > 0)
      for (float& x : vec) x = static_cast<float>(x / norm);
  }
  json item = {{"object", "embedding"}, {"index", index}};
  if (req.base64) {
    static_assert(sizeof(float) == 4, "float32");
    item["embedding"] = base64_encode(vec.data(), vec.size() * sizeof(float));  // x86-64: little-endian
  } else {
    item["embedding"] = vec;
  }
  return item;
}

}  // namespace pagoda
