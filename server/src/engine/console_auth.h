// Credentials issued by flovyn-app, the console and identity provider:
// - JWTs (ES256) verified against the console's JWKS, which is cached and fetched again when a
//   token names an unknown key id (at most once per `min_refetch`);
// - API keys (flk_...) validated by calling the console's /api/auth/validate-key, with verdicts
//   cached briefly.
// Both map the credential's organisation id to the tenant that organisation owns (never by slug:
// slugs are unique only inside the console, and a tenant of the same slug may belong to another).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "engine/auth.h"
#include "flovyn/auth/jwt.h"
#include "flovyn/core/mutex.h"

namespace flovyn::engine {

// Tenant id owned by an organisation id; NOT_FOUND when it owns none yet.
using OwnerResolver = std::function<StatusOr<std::string>(const std::string& org_id)>;

struct JwtOptions {
  std::string jwks_uri;
  std::string issuer;
  std::string audience = "flovyn-server";
  std::chrono::milliseconds fetch_timeout{5000};
  std::chrono::milliseconds min_refetch{10000};
};

class JwtAuthenticator final : public Authenticator {
 public:
  JwtAuthenticator(JwtOptions options, OwnerResolver resolve)
      : options_(std::move(options)), resolve_(std::move(resolve)) {}
  StatusOr<std::optional<Principal>> Authenticate(const std::string& credential, const std::string& source) override;
  uint64_t fetches() const;  // JWKS documents fetched (for tests of caching)

 private:
  // The key set, fetched again when `kid` is unknown and the last fetch is old enough.
  StatusOr<std::shared_ptr<const jwt::KeySet>> KeysFor(const std::string& kid);

  JwtOptions options_;
  OwnerResolver resolve_;
  mutable Mutex mu_;
  std::shared_ptr<const jwt::KeySet> keys_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_fetch_ GUARDED_BY(mu_){};
  uint64_t fetches_ GUARDED_BY(mu_) = 0;
};

struct ConsoleApiKeyOptions {
  std::string validate_url;  // http://console:3000/api/auth/validate-key
  std::chrono::milliseconds timeout{5000};
  std::chrono::seconds valid_ttl{30};
  std::chrono::seconds invalid_ttl{5};
  // Unknown keys cost a call to the console each: per source address at most `per_source_per_sec`
  // (bursts of `per_source_burst`), and at most `max_in_flight` calls at once for everyone.
  // Beyond either, RESOURCE_EXHAUSTED (429) at once, so random keys cannot tie up the server.
  double per_source_per_sec = 5;
  double per_source_burst = 20;
  int max_in_flight = 4;
};

class ConsoleApiKeyAuthenticator final : public Authenticator {
 public:
  ConsoleApiKeyAuthenticator(ConsoleApiKeyOptions options, OwnerResolver resolve)
      : options_(std::move(options)), resolve_(std::move(resolve)) {}
  StatusOr<std::optional<Principal>> Authenticate(const std::string& credential, const std::string& source) override;

 private:
  struct Cached {
    std::optional<Principal> principal;  // empty: invalid
    std::string org_slug, org_id;
    std::chrono::steady_clock::time_point until;
  };
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  // Takes one validation from `source`'s bucket and a place among those in flight.
  Status Admit(const std::string& source);

  ConsoleApiKeyOptions options_;
  OwnerResolver resolve_;
  Mutex mu_;
  std::map<std::string, Cached> cache_ GUARDED_BY(mu_);    // by SHA-256 of the key
  std::map<std::string, Bucket> buckets_ GUARDED_BY(mu_);  // by source address; bounded
  int in_flight_ GUARDED_BY(mu_) = 0;
};

}  // namespace flovyn::engine
