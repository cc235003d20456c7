#include "engine/tenancy.h"

namespace flovyn::engine {

namespace {
// The slug alphabet; anything else names no tenant and is not looked up (nor cached).
bool SlugShaped(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}
}  // namespace

StatusOr<std::string> Tenancy::IdForSlug(const std::string& slug) {
  if (!SlugShaped(slug)) return NotFound("tenant not found");
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_slug_.find(slug);
    if (it != by_slug_.end()) return it->second;
  }
  auto t = store_.TenantBySlug(slug);
  if (!t.ok()) return t.status();
  std::lock_guard<std::mutex> l(mu_);
  if (by_slug_.size() >= kMaxCached) by_slug_.clear();
  by_slug_[slug] = t->id;
  return t->id;
}

StatusOr<std::string> Tenancy::IdForOwner(const std::string& owner) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_owner_.find(owner);
    if (it != by_owner_.end()) return it->second;
  }
  auto t = store_.TenantByOwner(owner);
  if (!t.ok()) return t.status();
  std::lock_guard<std::mutex> l(mu_);
  if (by_owner_.size() >= kMaxCached) by_owner_.clear();
  by_owner_[owner] = t->id;
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
      if (known_ids_.size() >= kMaxCached) known_ids_.clear();
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
