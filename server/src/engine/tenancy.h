// Resolves which tenant a request acts for, from its principal and the tenant it names, and
// refuses cross-tenant access. Tenant slugs are cached (a tenant's slug never changes).
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "engine/auth.h"
#include "engine/store.h"

namespace flovyn::engine {

class Tenancy {
 public:
  explicit Tenancy(Store& store) : store_(store) {}
  // `named_slug`: the tenant the request names (REST path, gRPC x-flovyn-tenant); may be empty.
  // Returns the tenant id; PERMISSION_DENIED when the principal belongs to another tenant.
  StatusOr<std::string> Resolve(const Principal& p, const std::string& named_slug);
  StatusOr<std::string> IdForSlug(const std::string& slug);
  // Org id from a credential (a tenant id or a slug) to a tenant id.
  StatusOr<std::string> IdForOrg(const std::string& org);

 private:
  Store& store_;
  std::mutex mu_;
  std::map<std::string, std::string> by_slug_;  // guarded by mu_
  std::set<std::string> known_ids_;             // guarded by mu_ (tenants are never deleted)
};

}  // namespace flovyn::engine
