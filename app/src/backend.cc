#include "backend.h"

#include "flovyn/http/client.h"
#include "flovyn/trace/trace.h"

namespace flovyn::app {

using nlohmann::json;

namespace {

StatusCode CodeForHttp(int status) {
  switch (status) {
    case 400:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return StatusCode::kAlreadyExists;
    case 412:
      return StatusCode::kFailedPrecondition;
    case 413:
      return StatusCode::kPayloadTooLarge;
    case 429:
      return StatusCode::kResourceExhausted;
    case 504:
      return StatusCode::kDeadlineExceeded;
    default:
      return status >= 500 ? StatusCode::kUnavailable : StatusCode::kInvalidArgument;
  }
}

}  // namespace

std::string Backend::TokenFor(const Session& s) const {
  auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  json claims = {{"sub", s.user.id},    {"email", s.user.email},
                 {"name", s.user.name}, {"org", {{"id", s.org.id}, {"slug", s.org.slug}, {"role", s.org.role}}},
                 {"iss", issuer_},      {"aud", "flovyn-server"},
                 {"iat", now},          {"exp", now + token_ttl_.count()}};
  return keys_.Sign(claims);
}

StatusOr<json> Backend::Send(const Session& s, const std::string& method, const std::string& url,
                             const json* body) const {
  http::ClientRequest req;
  req.method = method;
  req.url = url;
  req.timeout = timeout_;
  req.headers = {{"authorization", "Bearer " + TokenFor(s)}, {"accept", "application/json"}};
  // The page's span continues on the server.
  if (auto span = trace::Current()) req.headers.emplace_back("traceparent", span->TraceParent());
  if (body) {
    req.headers.emplace_back("content-type", "application/json");
    req.body = body->dump();
  }
  auto res = http::Fetch(req);
  if (!res.ok()) return Status(StatusCode::kUnavailable, "the Flovyn server cannot be reached");
  json j = res->body.empty() ? json::object() : json::parse(res->body, nullptr, false);
  if (res->status >= 200 && res->status < 300) {
    if (j.is_discarded()) return Status(StatusCode::kUnavailable, "the Flovyn server answered with a malformed body");
    return j;
  }
  std::string message = "the Flovyn server answered " + std::to_string(res->status);
  if (!j.is_discarded() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
      j["error"]["message"].is_string()) {
    message = j["error"]["message"].get<std::string>();
  }
  return Status(CodeForHttp(res->status), message);
}

StatusOr<json> Backend::Call(const Session& s, const std::string& method, const std::string& path,
                             const json* body) const {
  return Send(s, method, base_url_ + "/api/tenants/" + s.org.slug + path, body);
}

Status Backend::CreateTenant(const Session& s, bool claim_legacy) const {
  json body = {{"slug", s.org.slug}, {"name", s.org.name}};
  if (claim_legacy) body["claimLegacy"] = true;
  auto r = Send(s, "POST", base_url_ + "/api/tenants", &body);
  if (r.ok()) return Status::Ok();
  // The server answers 200 when this organisation already owns the tenant; 409 means the slug
  // belongs to someone else, and is never adopted.
  if (r.status().code() == StatusCode::kAlreadyExists) {
    return Status(StatusCode::kAlreadyExists,
                  "The organisation slug '" + s.org.slug + "' is taken on the Flovyn server; choose another");
  }
  return r.status();
}

Status Backend::EnsureTenant(Session& s, Identity& identity) const {
  if (s.org.tenant_ready) return Status::Ok();
  if (Status c = CreateTenant(s, /*claim_legacy=*/true); !c.ok()) return c;
  Status m = identity.MarkTenantReady(s.org.id);
  if (m.ok()) s.org.tenant_ready = true;
  return m;
}

health::CheckResult Backend::Check(const std::string& base_url, health::Clock::time_point deadline) {
  auto start = health::Clock::now();
  http::ClientRequest req;
  req.url = base_url + "/_/health/live";
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - start);
  if (req.timeout.count() <= 0) return {false, 0, "no time left"};
  auto res = http::Fetch(req);
  health::CheckResult out;
  out.latency_ms = std::chrono::duration<double, std::milli>(health::Clock::now() - start).count();
  if (!res.ok()) {
    out.error = res.status().code() == StatusCode::kUnavailable ? "unreachable" : "bad BACKEND_URL";
    if (res.status().message().rfind("no answer", 0) == 0) out.error = "timed out";
    return out;
  }
  if (res->status != 200) {
    out.error = "answered " + std::to_string(res->status);
    return out;
  }
  out.up = true;
  return out;
}

}  // namespace flovyn::app
