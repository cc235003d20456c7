// Who is calling: the Authenticator interface, and static API keys from the configuration file.
// Other schemes plug in through it: the console's JWTs and API keys (console_auth.h) and worker
// tokens (the worker-token plugin). A principal belongs to one tenant, or is a platform admin.
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flovyn/core/mutex.h"
#include "flovyn/core/status.h"
#include "flovyn/db/pool.h"

namespace flovyn::engine {

struct Principal {
  enum class Kind { kAnonymous, kWorkerToken, kApiKey, kJwt } kind = Kind::kAnonymous;
  std::string id;         // token id, key principal id, user id
  std::string tenant_id;  // empty for platform admins (and console credentials of an org with no tenant yet)
  std::string org_slug;   // console credentials: the organisation the credential names
  std::string org_id;     // console credentials: that organisation's immutable id (the tenant's owner)
  std::string role;       // "admin", "member", "worker", ...
  bool platform_admin = false;
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // nullopt: not this scheme's credential (try the next); error: this scheme's and invalid.
  // `source`: the caller's network address (for per-source limits).
  virtual StatusOr<std::optional<Principal>> Authenticate(const std::string& credential, const std::string& source) = 0;
};

struct StaticApiKey {
  std::string key, org_id, principal_type, principal_id, role;
};

class StaticApiKeyAuthenticator final : public Authenticator {
 public:
  // `resolve_org` maps an org id (tenant id or slug) to a tenant id.
  StaticApiKeyAuthenticator(std::vector<StaticApiKey> keys,
                            std::function<StatusOr<std::string>(const std::string&)> resolve_org)
      : keys_(std::move(keys)), resolve_org_(std::move(resolve_org)) {}
  StatusOr<std::optional<Principal>> Authenticate(const std::string& credential, const std::string& source) override;

 private:
  std::vector<StaticApiKey> keys_;
  std::function<StatusOr<std::string>(const std::string&)> resolve_org_;
};

// Parses `[{ key, org_id, principal_type, principal_id, role }]` (JSON text).
StatusOr<std::vector<StaticApiKey>> ParseStaticApiKeys(const std::string& json_text);

// Tries each authenticator in order. With security disabled every caller is an anonymous admin.
class AuthChain {
 public:
  explicit AuthChain(bool enabled) : enabled_(enabled) {}
  void Add(std::shared_ptr<Authenticator> a) { chain_.push_back(std::move(a)); }
  bool enabled() const { return enabled_; }
  // `authorization`: the header/metadata value ("Bearer ..."); may be empty.
  StatusOr<Principal> Authenticate(const std::string& authorization, const std::string& source);

 private:
  bool enabled_;
  std::vector<std::shared_ptr<Authenticator>> chain_;
};

}  // namespace flovyn::engine
