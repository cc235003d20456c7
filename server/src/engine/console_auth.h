// Credentials issued by flovyn-app, the console and identity provider:
// - JWTs (ES256) verified against the console's JWKS, which is cached and fetched again when a
//   token names an unknown key id (at most once per `min_refetch`);
// - API keys (flk_...) validated by calling the console's /api/auth/validate-key, with verdicts
//   cached briefly.
// Both map the credential's organisation slug to the server's tenant of the same slug.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "engine/auth.h"
#include "flovyn/auth/jwt.h"

namespace flovyn::engine {

// Tenant id for a slug; NOT_FOUND when no such tenant exists yet.
using SlugResolver = std::function<StatusOr<std::string>(const std::string& slug)>;

struct JwtOptions {
  std::string jwks_uri;
  std::string issuer;
  std::string audience = "flovyn-server";
  std::chrono::milliseconds fetch_timeout{5000};
  std::chrono::milliseconds min_refetch{10000};
};

class JwtAuthenticator final : public Authenticator {
 public:
  JwtAuthenticator(JwtOptions options, SlugResolver resolve) : options_(std::move(options)), resolve_(std::move(resolve)) {}
  StatusOr<std::optional<Principal>> Authenticate(const std::string& credential) override;
  uint64_t fetches() const;  // JWKS documents fetched (for tests of caching)

 private:
  // The key set, fetched again when `kid` is unknown and the last fetch is old enough.
  StatusOr<std::shared_ptr<const jwt::KeySet>> KeysFor(const std::string& kid);

  JwtOptions options_;
  SlugResolver resolve_;
  mutable std::mutex mu_;
  std::shared_ptr<const jwt::KeySet> keys_;                   // guarded by mu_
  std::chrono::steady_clock::time_point last_fetch_{};        // guarded by mu_
  uint64_t fetches_ = 0;                                      // guarded by mu_
};

struct ConsoleApiKeyOptions {
  std::string validate_url;  // http://console:3000/api/auth/validate-key
  std::chrono::milliseconds timeout{5000};
  std::chrono::seconds valid_ttl{30};
  std::chrono::seconds invalid_ttl{5};
};

class ConsoleApiKeyAuthenticator final : public Authenticator {
 public:
  ConsoleApiKeyAuthenticator(ConsoleApiKeyOptions options, SlugResolver resolve)
      : options_(std::move(options)), resolve_(std::move(resolve)) {}
  StatusOr<std::optional<Principal>> Authenticate(const std::string& credential) override;

 private:
  struct Cached {
    std::optional<Principal> principal;  // empty: invalid
    std::string org_slug;
    std::chrono::steady_clock::time_point until;
  };
  ConsoleApiKeyOptions options_;
  SlugResolver resolve_;
  std::mutex mu_;
  std::map<std::string, Cached> cache_;  // by SHA-256 of the key; guarded by mu_
};

}  // namespace flovyn::engine
