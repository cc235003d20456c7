#include "pages.h"

#include <cstdlib>
#include <ctime>

#include <spdlog/spdlog.h>

#include "identity.h"

namespace flovyn::generated {
const std::map<std::string, std::pair<std::string, std::string>>& app_templates();
}  // namespace flovyn::generated

namespace flovyn::app {

using nlohmann::json;

const http::Templates& Views() {
  static const http::Templates templates = [] {
    std::map<std::string, std::string> sources;
    for (const auto& [file, asset] : generated::app_templates()) {
      sources.emplace(file.substr(0, file.rfind(".mustache")), asset.second);
    }
    auto built = http::Templates::Build(std::move(sources));
    if (!built.ok()) {
      spdlog::critical("the console's templates: {}", built.status().message());
      std::abort();
    }
    return std::move(*built);
  }();
  return templates;
}

std::string Render(const char* name, const json& view) { return Views().Render(name, view); }

std::string BadgeClass(std::string_view status) {
  std::string cls;
  cls.reserve(status.size());
  for (char c : status) cls += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return cls;
}

json Badge(const std::string& status) { return {{"status", status}, {"badgeClass", BadgeClass(status)}}; }

json JsonView(const json& v) {
  if (v.is_null()) return {{"text", false}};
  return {{"text", v.dump(2, ' ', false, json::error_handler_t::replace)}};
}

std::string FormatMillis(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03d UTC", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string Layout(const Frame& f, const std::string& body) {
  json view = {{"title", f.title},
               {"refresh", f.refresh_secs > 0 ? json(f.refresh_secs) : json(false)},
               {"backendDown", f.backend_down},
               {"error", f.error},
               {"notice", f.notice},
               {"body", body},
               {"member", false}};
  if (f.session) {
    static const std::array<std::array<const char*, 3>, 8> kNav = {
        {{"overview", "/overview", "Overview"},
         {"workflows", "/workflows", "Workflows"},
         {"tasks", "/tasks", "Tasks"},
         {"schedules", "/schedules", "Schedules"},
         {"eventhooks", "/eventhooks", "Event hooks"},
         {"workers", "/workers", "Workers"},
         {"worker-tokens", "/worker-tokens", "Worker tokens"},
         {"api-keys", "/api-keys", "API keys"}}};
    json nav = json::array();
    for (const auto& [key, href, label] : kNav) {
      nav.push_back({{"href", href}, {"label", label}, {"active", f.nav == key}});
    }
    view["member"] = {
        {"nav", nav}, {"org", f.session->org.name}, {"email", f.session->user.email}, {"csrf", f.session->csrf_token}};
  }
  return Render("layout", view);
}

}  // namespace flovyn::app
