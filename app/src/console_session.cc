// Sessions and CSRF for the console's pages: who the visitor is (a signed-in member or an
// anonymous visitor with a cookie), same-origin and token checks on every POST, and the cookies
// and headers each answer carries.
#include <spdlog/spdlog.h>

#include "console_common.h"
#include "flovyn/crypto/crypto.h"

namespace flovyn::app {

std::string ConsoleModule::Origin(const Request& req) const {
  if (settings_.trust_host) {
    std::string host(req.Header("x-forwarded-host"));
    if (!host.empty()) {
      std::string proto(req.Header("x-forwarded-proto"));
      host = host.substr(0, host.find(','));
      proto = proto.substr(0, proto.find(','));
      return (proto == "https" ? "https" : "http") + std::string("://") + host;
    }
  }
  auto scheme = settings_.public_url.find("://");
  auto slash = settings_.public_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return settings_.public_url.substr(0, slash);
}

std::string ConsoleModule::ClientAddress(const Request& req) const {
  if (settings_.trust_host) {
    // The last hop is the one the trusted proxy appended; earlier ones are the client's to write.
    std::string_view fwd = req.Header("x-forwarded-for");
    auto comma = fwd.rfind(',');
    if (comma != std::string_view::npos) fwd.remove_prefix(comma + 1);
    while (!fwd.empty() && fwd.front() == ' ') fwd.remove_prefix(1);
    while (!fwd.empty() && fwd.back() == ' ') fwd.remove_suffix(1);
    if (!fwd.empty() && fwd.size() <= 64) return std::string(fwd);
  }
  return req.remote_address;
}

Response ConsoleModule::Finish(Response r, const Visit& v) const {
  for (const auto& c : v.set_cookies) r.With("Set-Cookie", c);
  // Browsers remember to use https only; over plain http in development it would lock them out.
  if (settings_.production()) r.With("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
  return r;
}

bool ConsoleModule::SecureCookies(const Request& req) const {
  return settings_.production() || Origin(req).rfind("https://", 0) == 0;
}

std::string ConsoleModule::SessionCookie(const Request& req, const std::string& value, long max_age) const {
  return std::string(kSessionCookie) + "=" + value + "; Path=/; Max-Age=" + std::to_string(max_age) +
         "; HttpOnly; SameSite=Lax" + (SecureCookies(req) ? "; Secure" : "");
}

namespace {
// The Origin header, when a browser sent one, must be the console's own.
bool SameOrigin(const Request& req, const std::string& origin) {
  std::string_view sent = req.Header("origin");
  return sent.empty() || sent == origin;
}
}  // namespace

http::Handler ConsoleModule::Member(Page page) {
  return http::Sync([this, page = std::move(page)](const Request& req) -> Response {
    Visit v;
    auto found = identity_->FindSession(http::CookieValue(req, kSessionCookie));
    if (!found.ok()) {
      spdlog::warn("session lookup failed: {}", found.status().message());
      return Refusal(503, "Temporarily unavailable",
                     "The console's database cannot be reached. Try again in a moment.");
    }
    if (!*found) {
      if (req.method == "GET") return Redirect("/sign-in");
      return Refusal(401, "Signed out", "Your session has ended. Sign in again.");
    }
    v.session = std::move(**found);
    v.csrf = v.session->csrf_token;
    if (req.method == "POST") {
      if (!SameOrigin(req, Origin(req))) return Refusal(403, "Refused", "Cross-origin form submissions are refused.");
      auto form = http::FormOf(req, kMaxField);
      if (!form.ok()) return Refusal(415, "Unsupported form", form.status().message());
      if (!crypto::ConstantTimeEqual(Field(*form, "_csrf"), v.csrf)) {
        return Refusal(403, "Refused", "The form's security token is missing or stale. Reload the page and try again.");
      }
      v.form = std::move(*form);
    }
    // An organisation whose tenant is not on the server yet (it was down at sign-up) gets it now.
    if (!v.session->org.tenant_ready) {
      Status t = backend_->EnsureTenant(*v.session, *identity_);
      if (!t.ok()) spdlog::warn("creating tenant '{}' on the server: {}", v.session->org.slug, t.message());
    }
    return Finish(page(req, v), v);
  });
}

http::Handler ConsoleModule::Anonymous(Page page) {
  return http::Sync([this, page = std::move(page)](const Request& req) -> Response {
    Visit v;
    std::string visitor = http::CookieValue(req, kVisitorCookie);
    if (req.method == "POST") {
      if (!SameOrigin(req, Origin(req))) return Refusal(403, "Refused", "Cross-origin form submissions are refused.");
      auto form = http::FormOf(req, kMaxField);
      if (!form.ok()) return Refusal(415, "Unsupported form", form.status().message());
      if (visitor.empty() ||
          !crypto::ConstantTimeEqual(Field(*form, "_csrf"), identity_->cookies().AnonymousCsrf(visitor))) {
        return Refusal(403, "Refused", "The form's security token is missing or stale. Reload the page and try again.");
      }
      v.form = std::move(*form);
    }
    if (visitor.empty() || visitor.size() > 100) {
      visitor = crypto::RandomToken(24);
      v.set_cookies.push_back(std::string(kVisitorCookie) + "=" + visitor + "; Path=/; HttpOnly; SameSite=Lax" +
                              (SecureCookies(req) ? "; Secure" : ""));
    }
    v.csrf = identity_->cookies().AnonymousCsrf(visitor);
    return Finish(page(req, v), v);
  });
}

}  // namespace flovyn::app
