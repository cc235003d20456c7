#include "engine/tenancy.h"

#include "flovyn/core/mutex.h"

namespace flovyn::engine {

StatusOr<std::string> Tenancy::Cached(Cache Caches::*cache, const std::string& key,
                                      const std::function<StatusOr<Tenant>()>& load) {
  {
    MutexLock l(cache_mu_);
    if (auto hit = (caches_.*cache).Get(key)) return *hit;
  }
  auto t = load();
  if (!t.ok()) return t.status();  // only resolved tenants are kept
  MutexLock l(cache_mu_);
  (caches_.*cache).Put(key, t->id);
  return t->id;
}

StatusOr<std::string> Tenancy::IdForSlug(const std::string& slug) {
  // Anything but a slug names no tenant and is neither looked up nor cached.
  if (!IsSlug(slug)) return NotFound("tenant not found");
  return Cached(&Caches::by_slug, slug, [&] { return store_.TenantBySlug(slug); });
}

StatusOr<std::string> Tenancy::IdForOwner(const std::string& owner) {
  return Cached(&Caches::by_owner, owner, [&] { return store_.TenantByOwner(owner); });
}

StatusOr<std::string> Tenancy::IdForOrg(const std::string& org) {
  if (IsUuid(org)) {
    auto id = Cached(&Caches::by_id, org, [&] { return store_.TenantById(org); });
    if (id.ok()) return id;
  }
  return IdForSlug(org);
}

StatusOr<std::string> Tenancy::Resolve(const Principal& p, const std::string& named_slug) {
  if (named_slug.empty()) {
    if (!p.tenant_id.empty()) return p.tenant_id;
    return InvalidArgument("name the tenant (x-flovyn-tenant metadata or the URL)");
  }
  auto id = IdForSlug(named_slug);
  if (!id.ok()) {
    // Do not reveal to another tenant's principal whether the slug exists.
    if (id.status().code() == StatusCode::kNotFound && !p.platform_admin) {
      return Status(StatusCode::kPermissionDenied, "not allowed to act for this tenant");
    }
    return id.status();
  }
  if (!p.platform_admin && p.tenant_id != *id) {
    return Status(StatusCode::kPermissionDenied, "not allowed to act for this tenant");
  }
  return *id;
}

}  // namespace flovyn::engine
