#include "engine/auth.h"

#include <nlohmann/json.hpp>

#include "flovyn/core/mutex.h"
#include "flovyn/crypto/crypto.h"

namespace flovyn::engine {

namespace {
using crypto::ConstantTimeEqual;
}  // namespace

StatusOr<std::optional<Principal>> StaticApiKeyAuthenticator::Authenticate(const std::string& credential,
                                                                           const std::string&) {
  for (const auto& k : keys_) {
    if (!ConstantTimeEqual(k.key, credential)) continue;
    Principal p;
    p.kind = Principal::Kind::kApiKey;
    p.id = k.principal_id;
    p.role = k.role;
    if (k.org_id == "*") {
      p.platform_admin = true;
    } else {
      auto tenant = resolve_org_(k.org_id);
      if (!tenant.ok()) {
        if (tenant.status().code() == StatusCode::kNotFound) {
          return Status(StatusCode::kUnauthenticated, "API key's organisation has no tenant");
        }
        return tenant.status();
      }
      p.tenant_id = *tenant;
    }
    return std::optional<Principal>(p);
  }
  return std::optional<Principal>();
}

StatusOr<std::vector<StaticApiKey>> ParseStaticApiKeys(const std::string& text) {
  std::vector<StaticApiKey> out;
  if (text.empty()) return out;
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_array()) return InvalidArgument("auth.static_api_key.keys must be an array of tables");
    for (const auto& e : j) {
      StaticApiKey k;
      k.key = e.value("key", "");
      k.org_id = e.value("org_id", "");
      k.principal_type = e.value("principal_type", "service");
      k.principal_id = e.value("principal_id", "");
      k.role = e.value("role", "member");
      if (k.role != "admin" && k.role != "member") {
        return InvalidArgument("auth.static_api_key.keys: role must be \"admin\" or \"member\"");
      }
      if (k.key.size() < 16) return InvalidArgument("auth.static_api_key.keys: every key needs at least 16 characters");
      if (k.org_id.empty())
        return InvalidArgument("auth.static_api_key.keys: every key needs an org_id ('*' for admin)");
      out.push_back(std::move(k));
    }
  } catch (const std::exception&) {
    return InvalidArgument("auth.static_api_key.keys is not valid");
  }
  return out;
}

StatusOr<Principal> AuthChain::Authenticate(const std::string& authorization, const std::string& source) {
  if (!enabled_) {
    Principal p;
    p.platform_admin = true;
    p.role = "admin";
    return p;
  }
  std::string cred = authorization;
  if (cred.rfind("Bearer ", 0) == 0 || cred.rfind("bearer ", 0) == 0) cred = cred.substr(7);
  while (!cred.empty() && cred.back() == ' ') cred.pop_back();
  if (cred.empty()) return Status(StatusCode::kUnauthenticated, "missing credentials (Authorization: Bearer ...)");
  for (auto& a : chain_) {
    auto r = a->Authenticate(cred, source);
    if (!r.ok()) return r.status();
    if (*r) return **r;
  }
  return Status(StatusCode::kUnauthenticated, "invalid credentials");
}

}  // namespace flovyn::engine
