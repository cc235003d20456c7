// The console's identities: accounts (argon2id), organisations and roles, server-side sessions,
// API keys (stored as SHA-256), slowed-down failed sign-ins, and the ES256 keys that sign the
// tokens flovyn-server trusts (sealed with a key derived from BETTER_AUTH_SECRET).
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flovyn/auth/jwt.h"
#include "flovyn/core/mutex.h"
#include "flovyn/core/status.h"
#include "flovyn/db/pool.h"
#include "password_pool.h"

namespace flovyn::app {

// argon2id, PHC string format.
std::string HashPassword(std::string_view password);
bool VerifyPassword(const std::string& encoded, std::string_view password);

// Why a new password is refused ("" when it is acceptable): at least 10 characters, at least 5
// different ones, not only spaces, not the email address.
std::string PasswordProblem(std::string_view password, std::string_view email);

// Lower-case letters, digits and dashes, 3 to 40 characters, from an organisation name.
std::string SlugFrom(std::string_view name);
bool ValidSlug(std::string_view slug);

struct User {
  std::string id, email, name;
};
struct Org {
  std::string id, slug, name, role;
  bool tenant_ready = false;
};
struct Session {
  User user;
  Org org;
  std::string csrf_token;
};

// Failed sign-ins are counted per (email, client address) and per client address; past the free
// attempts each further one waits twice as long. A user signing in from another address is never
// held up by someone guessing their password elsewhere.
struct SignInThrottle {
  int free_attempts = 5;                // per email and address: failures allowed before waiting
  int address_free_attempts = 20;       // per address, any email
  std::chrono::seconds first_wait{30};  // doubles with every further failure
  std::chrono::seconds max_wait{900};
  std::chrono::seconds forget_after{900};  // failures older than this no longer count
};

struct ApiKeyInfo {
  std::string id, name, prefix, created_at;
  std::optional<std::string> last_used_at, revoked_at;
};
struct ValidKey {
  std::string key_id, role;
  User user;
  Org org;
};

// The session cookie's value: a random token and its HMAC under the secret.
class SessionCookies {
 public:
  explicit SessionCookies(std::string secret) : secret_(std::move(secret)) {}
  std::string Wrap(const std::string& token) const;
  std::optional<std::string> Unwrap(std::string_view cookie) const;  // the token when the MAC holds
  // A CSRF token bound to an anonymous visitor's cookie (sign-in and sign-up forms).
  std::string AnonymousCsrf(std::string_view visitor) const;

 private:
  std::string secret_;
};

class Identity {
 public:
  Identity(db::Pool& pool, std::string secret, std::chrono::hours session_ttl, PasswordPool& passwords,
           SignInThrottle throttle = {});

  // Creates the account, its organisation (the user as owner) and a session. `before_commit`
  // runs inside the transaction once the organisation has its id (the console creates the
  // server's tenant there); its failure rolls everything back. ALREADY_EXISTS when the email or
  // the slug is taken; RESOURCE_EXHAUSTED when password hashing is saturated.
  StatusOr<std::pair<std::string, Session>> SignUp(const std::string& email, const std::string& name,
                                                   const std::string& password, const std::string& org_name,
                                                   const std::string& org_slug,
                                                   const std::function<Status(const Session&)>& before_commit);
  // UNAUTHENTICATED for a wrong email or password; RESOURCE_EXHAUSTED (message says how long to
  // wait) after repeated failures from `client` or while hashing is saturated. Returns the cookie.
  StatusOr<std::pair<std::string, Session>> SignIn(const std::string& email, const std::string& password,
                                                   const std::string& client);
  StatusOr<std::optional<Session>> FindSession(std::string_view cookie);
  Status EndSession(std::string_view cookie);
  Status MarkTenantReady(const std::string& org_id);

  StatusOr<std::pair<ApiKeyInfo, std::string>> CreateApiKey(const Session& s, const std::string& name);
  StatusOr<std::vector<ApiKeyInfo>> ListApiKeys(const Session& s);
  Status RevokeApiKey(const Session& s, const std::string& id);
  StatusOr<std::optional<ValidKey>> ValidateApiKey(const std::string& key);

  const SessionCookies& cookies() const { return cookies_; }

 private:
  StatusOr<std::pair<std::string, Session>> NewSession(const User& u, const Org& o);

  // Counts one attempt under `key` unless it must wait; RESOURCE_EXHAUSTED with the wait.
  Status Reserve(const std::string& key, int free_attempts);
  // Gives back one attempt counted under `key` (it was not a failure).
  void Release(const std::string& key);
  // Deletes throttle rows that no longer count (at most once a minute).
  void PurgeExpired();

  db::Pool& pool_;
  SessionCookies cookies_;
  std::chrono::hours session_ttl_;
  PasswordPool& passwords_;
  SignInThrottle throttle_;
  std::string dummy_hash_;
  Mutex purge_mu_;
  std::chrono::steady_clock::time_point last_purge_
      GUARDED_BY(purge_mu_);  // verified against when the email is unknown, so timing tells nothing
};

// The active signing key and the public keys of all keys not yet retired.
class KeyRing {
 public:
  KeyRing(db::Pool& pool, std::string_view secret);
  // Loads the active key, creating one when there is none (replicas agree through a lock).
  Status Load();
  std::string Sign(const nlohmann::json& claims) const;
  nlohmann::json Jwks() const;

 private:
  db::Pool& pool_;
  std::string sealing_key_;
  mutable Mutex mu_;
  std::optional<jwt::SigningKey> active_ GUARDED_BY(mu_);
  nlohmann::json jwks_ GUARDED_BY(mu_);
};

// Unseals a stored signing key (for tools and tests that hold the secret).
StatusOr<jwt::SigningKey> UnsealSigningKey(std::string_view secret, const std::string& kid, const std::string& sealed);

}  // namespace flovyn::app
