#include "flovyn/http/web.h"

namespace flovyn::http {

std::string CookieValue(const Request& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k != "cookie") continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view part = rest.substr(0, semi);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      auto eq = part.find('=');
      if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
  }
  return "";
}

StatusOr<std::map<std::string, std::string>> FormOf(const Request& req, size_t max_field) {
  std::string_view ct = req.Header("content-type");
  ct = ct.substr(0, ct.find(';'));
  if (ct != "application/x-www-form-urlencoded") {
    return InvalidArgument("forms must be sent as application/x-www-form-urlencoded");
  }
  auto fields = ParseQuery(req.body);
  for (const auto& [k, v] : fields) {
    if (v.size() > max_field) return InvalidArgument("the field '" + k + "' is too long");
  }
  return fields;
}

std::string Field(const std::map<std::string, std::string>& form, const char* name) {
  auto it = form.find(name);
  if (it == form.end()) return "";
  const std::string& v = it->second;
  auto b = v.find_first_not_of(" \t\r\n");
  auto e = v.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : v.substr(b, e - b + 1);
}

std::string QueryValue(const Request& req, const char* name) {
  auto it = req.query.find(name);
  return it == req.query.end() ? "" : it->second;
}

Response WithPageSecurityHeaders(Response r) {
  r.With("Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
         "form-action 'self'; base-uri 'none'")
      .With("X-Content-Type-Options", "nosniff")
      .With("X-Frame-Options", "DENY")
      .With("Referrer-Policy", "same-origin")
      .With("Cache-Control", "no-store");
  return r;
}

Response HtmlPage(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  return WithPageSecurityHeaders(std::move(r));
}

Response SeeOther(const std::string& location) {
  Response r;
  r.status = 303;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "See " + location + "\n";
  r.With("Location", location);
  return WithPageSecurityHeaders(std::move(r));
}

}  // namespace flovyn::http
