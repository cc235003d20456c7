// Worker tokens on the worker protocol: `fwt_` plus 43 base64url characters, stored as
// HMAC-SHA256 with WORKER_TOKEN_SECRET. Verdicts are cached for two seconds (at most 10,000
// entries) so a busy worker does not cost a write per call; a revocation here clears the cache.
// Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "engine/auth.h"
#include "flovyn/core/mutex.h"
#include "worker_token_store.h"

namespace flovyn::plugins {

// HMAC-SHA256(secret, token) in lower-case hex.
std::string TokenHash(const std::string& secret, const std::string& token);
// "fwt_" + 43 base64url characters of randomness.
std::string NewWorkerToken();

class WorkerTokenAuthenticator final : public engine::Authenticator {
 public:
  WorkerTokenAuthenticator(WorkerTokenStore& store, std::string secret) : store_(store), secret_(std::move(secret)) {}
  StatusOr<std::optional<engine::Principal>> Authenticate(const std::string& credential,
                                                          const std::string& source) override;
  // Forget cached verdicts (after a revocation).
  void Invalidate();

 private:
  struct Cached {
    engine::Principal principal;
    std::chrono::steady_clock::time_point until;
  };
  WorkerTokenStore& store_;
  std::string secret_;
  Mutex mu_;
  std::map<std::string, Cached> cache_ GUARDED_BY(mu_);  // by hash
};

}  // namespace flovyn::plugins
