// JSON Web Tokens signed with ES256 (ECDSA P-256, SHA-256): the console signs them, the server
// verifies them against the console's JWKS. Only ES256 is accepted when verifying; "none" and
// symmetric algorithms are refused whatever the header says.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "flovyn/core/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace flovyn::jwt {

class SigningKey {
 public:
  static SigningKey Generate(std::string kid);
  static StatusOr<SigningKey> FromPem(std::string kid, std::string_view pem);
  std::string PrivatePem() const;
  nlohmann::json PublicJwk() const;  // {kty, crv, x, y, kid, alg, use}
  std::string Sign(const nlohmann::json& claims) const;
  const std::string& kid() const { return kid_; }

 private:
  SigningKey(std::string kid, std::shared_ptr<EVP_PKEY> key) : kid_(std::move(kid)), key_(std::move(key)) {}
  std::string kid_;
  std::shared_ptr<EVP_PKEY> key_;
};

// Public keys by key id.
class KeySet {
 public:
  // Keys that are not EC P-256 are skipped; a malformed document is an error.
  static StatusOr<KeySet> FromJwks(const nlohmann::json& jwks);
  bool Has(const std::string& kid) const { return keys_.count(kid) > 0; }
  size_t size() const { return keys_.size(); }

 private:
  friend StatusOr<nlohmann::json> Verify(std::string_view, const KeySet&, const struct Expectations&);
  std::map<std::string, std::shared_ptr<EVP_PKEY>> keys_;
};

struct Expectations {
  std::string issuer;
  std::string audience;
  std::chrono::seconds leeway{30};
  // Longest lifetime accepted: `exp` further than this past now (or past `iat`) is refused, so a
  // leaked token cannot be made to live for ever.
  std::chrono::seconds max_lifetime{std::chrono::hours(24)};
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// The `kid` of the token's header (UNAUTHENTICATED when the token is malformed).
StatusOr<std::string> KeyIdOf(std::string_view token);
// Signature, algorithm, issuer, audience, expiry and issue time; the claims when all hold.
StatusOr<nlohmann::json> Verify(std::string_view token, const KeySet& keys, const Expectations& expect);

}  // namespace flovyn::jwt
