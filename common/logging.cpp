#include "common/logging.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace pagoda {
namespace {

// Set once by setup_logging, before other threads log.
bool g_json_format = false;
// A log_event payload in json format starts with this byte (ASCII record
// separator), then {"msg": event, "fields": {...}}.
constexpr char kFieldsMarker = '\x1e';

// Formats each record as one JSON object per line.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto secs = std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch());
    nlohmann::ordered_json j;
    j["ts"] = static_cast<double>(secs.count()) / 1e6;
    j["level"] =
        std::string(spdlog::level::to_string_view(msg.level).data(), spdlog::level::to_string_view(msg.level).size());
    j["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!payload.empty() && payload[0] == kFieldsMarker) {
      const nlohmann::ordered_json event =
          nlohmann::ordered_json::parse(payload.substr(1), nullptr, /*allow_exceptions=*/false);
      if (event.is_object()) {
        j["msg"] = event.value("msg", "");
        const nlohmann::ordered_json fields = event.value("fields", nlohmann::ordered_json::object());
        for (const auto& [k, v] : fields.items())
          if (!j.contains(k)) j[k] = v;
      } else {
        j["msg"] = std::string(payload.substr(1));
      }
    } else {
      j["msg"] = std::string(payload);
    }
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

Status setup_logging(const std::string& level, const std::string& format) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    return Status::invalid_argument("config key 'logging.level': got '" + level +
                                    "', expected one of trace, debug, info, warn, error, off");
  auto logger = std::make_shared<spdlog::logger>("pagoda", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  g_json_format = format == "json";
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else if (format == "text") {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  } else {
    return Status::invalid_argument("config key 'logging.format': got '" + format + "', expected one of text, json");
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return Status::ok();
}

void log_summary(spdlog::level::level_enum level, std::string_view event, std::string_view text,
                 const nlohmann::ordered_json& fields) {
  if (!spdlog::should_log(level)) return;
  if (g_json_format) {
    log_event(level, event, fields);
    return;
  }
  spdlog::log(level, "{}", text);
}

void log_event(spdlog::level::level_enum level, std::string_view event, const nlohmann::ordered_json& fields) {
  if (!spdlog::should_log(level)) return;
  if (g_json_format) {
    const nlohmann::ordered_json record = {{"msg", event}, {"fields", fields}};
    spdlog::log(level, "{}{}", kFieldsMarker, record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  std::string line(event);
  for (const auto& [k, v] : fields.items()) {
    line += ' ';
    line += k;
    line += '=';
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && c != '"' && c != '=' && c != 0x7f;
      });
      line += plain ? s : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      line += v.dump();
    }
  }
  spdlog::log(level, "{}", line);
}

}  // namespace pagoda
