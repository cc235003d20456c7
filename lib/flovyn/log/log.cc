#include "flovyn/log/log.h"

#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace flovyn::log {
namespace {

spdlog::level::level_enum LevelFromName(std::string name) {
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn" || name == "warning") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  if (name == "off") return spdlog::level::off;
  return spdlog::level::n_levels;  // unknown
}

// JSON lines: {"ts":"...","level":"info","msg":"..."}; escaping by nlohmann::json.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::json j;
    auto secs = std::chrono::time_point_cast<std::chrono::milliseconds>(msg.time);
    auto ms = secs.time_since_epoch().count();
    std::time_t t = ms / 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char full[48];
    std::snprintf(full, sizeof full, "%s.%03lldZ", buf, static_cast<long long>(ms % 1000));
    j["ts"] = full;
    auto lv = spdlog::level::to_string_view(msg.level);
    j["level"] = std::string(lv.data(), lv.size());
    j["msg"] = std::string(msg.payload.data(), msg.payload.size());
    if (msg.logger_name.size() != 0) j["target"] = std::string(msg.logger_name.data(), msg.logger_name.size());
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

spdlog::level::level_enum ParseLevel(const std::string& filter) {
  spdlog::level::level_enum global = spdlog::level::warn;
  spdlog::level::level_enum ours = spdlog::level::n_levels;
  std::stringstream ss(filter);
  std::string part;
  while (std::getline(ss, part, ',')) {
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string::npos) {
      auto l = LevelFromName(part);
      if (l != spdlog::level::n_levels) global = l;
    } else if (part.rfind("flovyn", 0) == 0) {
      auto l = LevelFromName(part.substr(eq + 1));
      if (l != spdlog::level::n_levels) ours = l;
    }
  }
  return ours != spdlog::level::n_levels ? ours : global;
}

void Init(const std::string& level_filter, const std::string& format) {
  auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("flovyn", sink);
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(ParseLevel(level_filter));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

}  // namespace flovyn::log
