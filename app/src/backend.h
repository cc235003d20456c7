// The console's calls to flovyn-server's REST API, made as the signed-in user: each call carries
// a short-lived JWT for the session's organisation, so the server applies its own tenancy rules.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "flovyn/health/monitor.h"
#include "identity.h"

namespace flovyn::app {

class Backend {
 public:
  Backend(std::string base_url, const KeyRing& keys, std::string issuer, std::chrono::seconds token_ttl,
          std::chrono::milliseconds timeout)
      : base_url_(std::move(base_url)),
        keys_(keys),
        issuer_(std::move(issuer)),
        token_ttl_(token_ttl),
        timeout_(timeout) {}

  // `path` is below /api/tenants/{slug} ("/workflows?status=RUNNING"). The server's error
  // becomes the Status (UNAVAILABLE when it cannot be reached).
  StatusOr<nlohmann::json> Call(const Session& s, const std::string& method, const std::string& path,
                                const nlohmann::json* body = nullptr) const;
  // Creates the organisation's tenant on the server, owned by the organisation's id. OK when the
  // organisation already owns it; ALREADY_EXISTS when the slug belongs to another owner.
  // `claim_legacy`: also take over the tenant of this slug made before owners were recorded.
  Status CreateTenant(const Session& s, bool claim_legacy = false) const;
  // For organisations made before their tenant had an owner (every organisation at the upgrade
  // that recorded owners): creates or claims it, marks it ready. Sign-up never claims.
  Status EnsureTenant(Session& s, Identity& identity) const;
  std::string TokenFor(const Session& s) const;
  // The `backend` dependency: GET $BACKEND_URL/_/health/live.
  static health::CheckResult Check(const std::string& base_url, health::Clock::time_point deadline);

 private:
  StatusOr<nlohmann::json> Send(const Session& s, const std::string& method, const std::string& url,
                                const nlohmann::json* body) const;

  std::string base_url_;
  const KeyRing& keys_;
  std::string issuer_;
  std::chrono::seconds token_ttl_;
  std::chrono::milliseconds timeout_;
};

}  // namespace flovyn::app
