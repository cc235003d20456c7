#include "pages.h"

#include <ctime>

#include "identity.h"

namespace flovyn::app {

std::string Esc(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string CsrfField(const std::string& token) {
  return "<input type=\"hidden\" name=\"_csrf\" value=\"" + Esc(token) + "\">";
}

std::string StatusBadge(const std::string& status) {
  std::string cls = "badge";
  for (char c : status) cls += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return "<span class=\"badge " + Esc(cls.substr(5)) + "\">" + Esc(status) + "</span>";
}

std::string JsonBlock(const nlohmann::json& v) {
  if (v.is_null()) return "<span class=\"muted\">—</span>";
  return "<pre class=\"json\">" + Esc(v.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)) + "</pre>";
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
  std::string h;
  h.reserve(body.size() + 4096);
  h += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  if (f.refresh_secs > 0) h += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(f.refresh_secs) + "\">";
  h += "<title>" + Esc(f.title) +
       " · Flovyn</title>"
       "<link rel=\"stylesheet\" href=\"/assets/app.css\"><script src=\"/assets/app.js\" defer></script></head><body>";
  h += "<header class=\"top\"><a class=\"brand\" href=\"/\">Flovyn</a>";
  if (f.session) {
    auto item = [&](const char* key, const char* href, const char* label) {
      h += std::string("<a href=\"") + href + "\"" + (f.nav == key ? " class=\"active\" aria-current=\"page\"" : "") +
           ">" + label + "</a>";
    };
    h += "<nav>";
    item("overview", "/overview", "Overview");
    item("workflows", "/workflows", "Workflows");
    item("tasks", "/tasks", "Tasks");
    item("workers", "/workers", "Workers");
    item("worker-tokens", "/worker-tokens", "Worker tokens");
    item("api-keys", "/api-keys", "API keys");
    h += "</nav><div class=\"who\"><span class=\"org\">" + Esc(f.session->org.name) + "</span> <span class=\"muted\">" +
         Esc(f.session->user.email) +
         "</span>"
         "<form method=\"post\" action=\"/sign-out\" class=\"inline\">" +
         CsrfField(f.session->csrf_token) +
         "<button type=\"submit\" class=\"link\" id=\"sign-out\">Sign out</button></form></div>";
  }
  h += "</header><main>";
  if (f.backend_down) {
    h += "<div class=\"alert warn\" role=\"alert\" id=\"backend-down\"><strong>The Flovyn server cannot be reached "
         "right now.</strong> Nothing is lost: workflows keep their state on the server. Try again in a moment.</div>";
  }
  if (!f.error.empty()) h += "<div class=\"alert error\" role=\"alert\">" + Esc(f.error) + "</div>";
  if (!f.notice.empty()) h += "<div class=\"alert ok\" role=\"status\">" + Esc(f.notice) + "</div>";
  h += body;
  h += "</main></body></html>\n";
  return h;
}

}  // namespace flovyn::app
