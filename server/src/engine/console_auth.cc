#include "engine/console_auth.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine/store.h"
#include "flovyn/core/mutex.h"
#include "flovyn/crypto/crypto.h"
#include "flovyn/http/client.h"

namespace flovyn::engine {

using nlohmann::json;

namespace {

bool LooksLikeJwt(const std::string& c) { return c.rfind("eyJ", 0) == 0 && std::count(c.begin(), c.end(), '.') == 2; }

// The principal for an organisation; the tenant id stays empty while the organisation owns no
// tenant (the console may then create it, nothing else).
StatusOr<Principal> ForOrg(const OwnerResolver& resolve, Principal p, const std::string& org_id,
                           const std::string& slug) {
  p.org_slug = slug;
  p.org_id = org_id;
  auto id = resolve(org_id);
  if (id.ok()) {
    p.tenant_id = *id;
  } else if (id.status().code() != StatusCode::kNotFound) {
    return id.status();
  }
  return p;
}

std::string StringClaim(const json& j, const char* name) {
  return j.contains(name) && j[name].is_string() ? j[name].get<std::string>() : "";
}

}  // namespace

uint64_t JwtAuthenticator::fetches() const {
  MutexLock l(mu_);
  return fetches_;
}

StatusOr<std::shared_ptr<const jwt::KeySet>> JwtAuthenticator::KeysFor(const std::string& kid) {
  {
    MutexLock l(mu_);
    bool fresh_enough = std::chrono::steady_clock::now() - last_fetch_ < options_.min_refetch;
    if (keys_ && (keys_->Has(kid) || fresh_enough)) return keys_;
    if (!keys_ && fetches_ > 0 && fresh_enough) {
      return Status(StatusCode::kUnavailable, "the console's JWKS could not be fetched");
    }
    last_fetch_ = std::chrono::steady_clock::now();
    ++fetches_;
  }
  // Fetched outside the lock; concurrent callers meanwhile use the previous set.
  http::ClientRequest req;
  req.url = options_.jwks_uri;
  req.timeout = options_.fetch_timeout;
  auto res = http::Fetch(req);
  Status failure;
  std::shared_ptr<const jwt::KeySet> fetched;
  if (!res.ok()) {
    failure = Status(StatusCode::kUnavailable, "fetching the console's JWKS failed: " + res.status().message());
  } else if (res->status != 200) {
    failure = Status(StatusCode::kUnavailable, "fetching the console's JWKS answered " + std::to_string(res->status));
  } else {
    json doc = json::parse(res->body, nullptr, false);
    auto set = jwt::KeySet::FromJwks(doc);
    if (!set.ok()) {
      failure = Status(StatusCode::kUnavailable, "the console's JWKS is malformed: " + set.status().message());
    } else {
      fetched = std::make_shared<const jwt::KeySet>(std::move(*set));
    }
  }
  MutexLock l(mu_);
  if (fetched) {
    keys_ = fetched;
    return keys_;
  }
  spdlog::warn("{}", failure.message());
  if (keys_) return keys_;  // keep verifying with the keys we had
  return failure;
}

StatusOr<std::optional<Principal>> JwtAuthenticator::Authenticate(const std::string& credential, const std::string&) {
  if (!LooksLikeJwt(credential)) return std::optional<Principal>();
  auto kid = jwt::KeyIdOf(credential);
  if (!kid.ok()) return kid.status();
  auto keys = KeysFor(*kid);
  if (!keys.ok()) return keys.status();
  jwt::Expectations expect;
  expect.issuer = options_.issuer;
  expect.audience = options_.audience;
  auto claims = jwt::Verify(credential, **keys, expect);
  if (!claims.ok()) return claims.status();
  const json& c = *claims;
  if (!c.contains("org") || !c["org"].is_object()) {
    return Status(StatusCode::kUnauthenticated, "token names no organisation");
  }
  std::string slug = StringClaim(c["org"], "slug");
  std::string org_id = StringClaim(c["org"], "id");
  if (slug.empty() || !IsUuid(org_id)) return Status(StatusCode::kUnauthenticated, "token names no organisation");
  Principal p;
  p.kind = Principal::Kind::kJwt;
  p.id = StringClaim(c, "sub");
  p.role = StringClaim(c["org"], "role");
  auto out = ForOrg(resolve_, p, org_id, slug);
  if (!out.ok()) return out.status();
  return std::optional<Principal>(*out);
}

namespace {
// "ipv4:10.0.0.1:5000" (gRPC peer) or "10.0.0.1" (HTTP) -> "10.0.0.1"
std::string SourceAddress(std::string s) {
  for (const char* p : {"ipv4:", "ipv6:"}) {
    if (s.rfind(p, 0) == 0) {
      s = s.substr(5);
      auto colon = s.rfind(':');
      if (colon != std::string::npos) s = s.substr(0, colon);
    }
  }
  return s.substr(0, 64);
}
}  // namespace

Status ConsoleApiKeyAuthenticator::Admit(const std::string& source) {
  constexpr size_t kMaxSources = 10000;
  auto now = std::chrono::steady_clock::now();
  MutexLock l(mu_);
  if (in_flight_ >= options_.max_in_flight) {
    return Status(StatusCode::kResourceExhausted, "too many API-key validations at once; retry in 1 s");
  }
  std::string key = SourceAddress(source);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxSources) buckets_.clear();
    it = buckets_.emplace(key, Bucket{options_.per_source_burst, now}).first;
  }
  Bucket& b = it->second;
  b.tokens = std::min(options_.per_source_burst,
                      b.tokens + std::chrono::duration<double>(now - b.at).count() * options_.per_source_per_sec);
  b.at = now;
  if (b.tokens < 1) {
    return Status(StatusCode::kResourceExhausted, "too many API-key validations from this address; retry in 1 s");
  }
  b.tokens -= 1;
  ++in_flight_;
  return Status::Ok();
}

StatusOr<std::optional<Principal>> ConsoleApiKeyAuthenticator::Authenticate(const std::string& credential,
                                                                            const std::string& source) {
  if (credential.rfind("flk_", 0) != 0) return std::optional<Principal>();
  std::string digest = crypto::Sha256Hex(credential);
  auto now = std::chrono::steady_clock::now();
  std::optional<Cached> hit;
  {
    MutexLock l(mu_);
    auto it = cache_.find(digest);
    if (it != cache_.end() && it->second.until > now) hit = it->second;
  }
  if (!hit) {
    if (Status admitted = Admit(source); !admitted.ok()) return admitted;
    struct Release {
      ConsoleApiKeyAuthenticator* self;
      ~Release() {
        MutexLock l(self->mu_);
        --self->in_flight_;
      }
    } release{this};
    http::ClientRequest req;
    req.method = "POST";
    req.url = options_.validate_url;
    req.timeout = options_.timeout;
    req.headers = {{"content-type", "application/json"}};
    req.body = json{{"key", credential}}.dump();
    auto res = http::Fetch(req);
    if (!res.ok()) {
      return Status(StatusCode::kUnavailable, "the console cannot validate API keys right now");
    }
    Cached entry;
    if (res->status == 200) {
      json body = json::parse(res->body, nullptr, false);
      if (body.is_discarded() || !body.is_object() || body.value("valid", false) != true || !body.contains("org") ||
          !body["org"].is_object()) {
        return Status(StatusCode::kUnavailable, "the console answered API-key validation with a malformed body");
      }
      Principal p;
      p.kind = Principal::Kind::kApiKey;
      p.id = StringClaim(body, "keyId");
      p.role = StringClaim(body, "role");
      entry.principal = p;
      entry.org_slug = StringClaim(body["org"], "slug");
      entry.org_id = StringClaim(body["org"], "id");
      if (!IsUuid(entry.org_id)) {
        return Status(StatusCode::kUnavailable, "the console answered API-key validation with a malformed body");
      }
      entry.until = now + options_.valid_ttl;
    } else if (res->status == 401 || res->status == 404) {
      entry.until = now + options_.invalid_ttl;
    } else {
      return Status(StatusCode::kUnavailable,
                    "the console answered API-key validation with " + std::to_string(res->status));
    }
    MutexLock l(mu_);
    if (cache_.size() > 10000) cache_.clear();
    cache_[digest] = entry;
    hit = entry;
  }
  if (!hit->principal) return Status(StatusCode::kUnauthenticated, "invalid or revoked API key");
  auto out = ForOrg(resolve_, *hit->principal, hit->org_id, hit->org_slug);
  if (!out.ok()) return out.status();
  return std::optional<Principal>(*out);
}

}  // namespace flovyn::engine
