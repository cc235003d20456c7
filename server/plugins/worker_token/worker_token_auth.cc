#include "worker_token_auth.h"

#include "flovyn/crypto/crypto.h"

namespace flovyn::plugins {

namespace {
constexpr auto kCacheTtl = std::chrono::seconds(2);
constexpr size_t kMaxCached = 10000;
}  // namespace

std::string TokenHash(const std::string& secret, const std::string& token) {
  return crypto::Hex(crypto::HmacSha256(secret, token));
}

std::string NewWorkerToken() { return "fwt_" + crypto::RandomToken(32); }

StatusOr<std::optional<engine::Principal>> WorkerTokenAuthenticator::Authenticate(const std::string& credential,
                                                                                  const std::string&) {
  using engine::Principal;
  if (credential.rfind("fwt_", 0) != 0) return std::optional<Principal>();
  std::string hash = TokenHash(secret_, credential);
  auto now = std::chrono::steady_clock::now();
  {
    MutexLock l(mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end() && it->second.until > now) return std::optional<Principal>(it->second.principal);
  }
  auto owner = store_.Use(hash);
  if (!owner.ok()) return owner.status();
  if (!*owner) return Status(StatusCode::kUnauthenticated, "invalid or revoked worker token");
  Principal p;
  p.kind = Principal::Kind::kWorkerToken;
  p.id = (*owner)->id;
  p.tenant_id = (*owner)->tenant_id;
  p.role = "worker";
  MutexLock l(mu_);
  if (cache_.size() >= kMaxCached) cache_.clear();
  cache_[hash] = Cached{p, now + kCacheTtl};
  return std::optional<Principal>(p);
}

void WorkerTokenAuthenticator::Invalidate() {
  MutexLock l(mu_);
  cache_.clear();
}

}  // namespace flovyn::plugins
