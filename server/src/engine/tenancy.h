// Resolves which tenant a request acts for, from its principal and the tenant it names, and
// refuses cross-tenant access. Slugs and owners are cached (neither changes once set), bounded.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "engine/auth.h"
#include "engine/store.h"
#include "flovyn/core/lru.h"
#include "flovyn/core/mutex.h"

namespace flovyn::engine {

class Tenancy {
 public:
  explicit Tenancy(Store& store) : store_(store) {}
  // `named_slug`: the tenant the request names (REST path, gRPC x-flovyn-tenant); may be empty.
  // Returns the tenant id; PERMISSION_DENIED when the principal belongs to another tenant.
  StatusOr<std::string> Resolve(const Principal& p, const std::string& named_slug);
  StatusOr<std::string> IdForSlug(const std::string& slug);
  // Org id from a static key (a tenant id or a slug) to a tenant id.
  StatusOr<std::string> IdForOrg(const std::string& org);
  // The tenant a console organisation owns (by the organisation's immutable id).
  StatusOr<std::string> IdForOwner(const std::string& owner);

 private:
  Store& store_;
  // The tenant id for `key`, from `cache` or `load` (which is then remembered).
  using Cache = LruMap<std::string, std::string>;
  struct Caches {
    Cache by_slug{kMaxCached}, by_owner{kMaxCached}, by_id{kMaxCached};
  };
  StatusOr<std::string> Cached(Cache Caches::*cache, const std::string& key,
                               const std::function<StatusOr<Tenant>()>& load);

  static constexpr size_t kMaxCached = 10000;  // per cache, least recently used evicted first
  // Resolved tenants only (slugs, owners and ids never change; tenants are never deleted).
  Mutex cache_mu_;
  Caches caches_ GUARDED_BY(cache_mu_);
};

}  // namespace flovyn::engine
