#include "chat/jinja_json.h"

namespace pagoda {

namespace {

constexpr int kMaxDepth = 512;

Result<JinjaValue> convert(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxDepth) return Status::invalid_argument("JSON nested deeper than 512 levels");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
    case nlohmann::ordered_json::value_t::discarded:
      return JinjaValue(nullptr);
    case nlohmann::ordered_json::value_t::boolean:
      return JinjaValue(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return JinjaValue(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return JinjaValue(static_cast<int64_t>(u));
      return JinjaValue(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return JinjaValue(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return JinjaValue(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      JinjaList l;
      l.reserve(j.size());
      for (const auto& x : j) {
        auto v = convert(x, depth + 1);
        if (!v) return v;
        l.push_back(std::move(v).value());
      }
      return JinjaValue(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      JinjaDict d;
      d.reserve(j.size());
      for (const auto& [k, x] : j.items()) {
        auto v = convert(x, depth + 1);
        if (!v) return v;
        d.emplace_back(k, std::move(v).value());
      }
      return JinjaValue(std::move(d));
    }
    case nlohmann::ordered_json::value_t::binary:
      break;
  }
  return Status::invalid_argument("JSON binary values cannot be rendered");
}

}  // namespace

Result<JinjaValue> jinja_from_json(const nlohmann::ordered_json& json) { return convert(json, 0); }

}  // namespace pagoda
