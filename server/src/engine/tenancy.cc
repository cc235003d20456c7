#include "engine/tenancy.h"

namespace flovyn::engine {

StatusOr<std::string> Tenancy::IdForSlug(const std::string& slug) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_slug_.find(slug);
    if (it != by_slug_.end()) return it->second;
  }
  auto t = store_.TenantBySlug(slug);
  if (!t.ok()) return t.status();
  std::lock_guard<std::mutex> l(mu_);
  by_slug_[slug] = t->id;
  return t->id;
}

StatusOr<std::string> Tenancy::IdForOrg(const std::string& org) {
  if (IsUuid(org)) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (known_ids_.count(org)) return org;
    }
    auto t = store_.TenantById(org);
    if (t.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      known_ids_.insert(t->id);
      return t->id;
    }
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
