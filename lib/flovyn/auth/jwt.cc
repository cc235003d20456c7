#include "flovyn/auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "flovyn/crypto/crypto.h"

namespace flovyn::jwt {

using nlohmann::json;

namespace {

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }

Status Unauthenticated(std::string m) { return Status(StatusCode::kUnauthenticated, std::move(m)); }

std::string BnPad(const BIGNUM* bn) {
  std::string out(32, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), 32);
  return out;
}

struct Parts {
  std::string_view header, payload, signature;
};

std::optional<Parts> Split(std::string_view token) {
  auto a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  auto b = token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) return std::nullopt;
  return Parts{token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
}

std::optional<json> DecodeJson(std::string_view part) {
  auto raw = crypto::Base64UrlDecode(part);
  if (!raw) return std::nullopt;
  json j = json::parse(*raw, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

}  // namespace

SigningKey SigningKey::Generate(std::string kid) {
  EVP_PKEY* k = EVP_EC_gen("P-256");
  if (!k) throw std::runtime_error("EC key generation failed");
  return SigningKey(std::move(kid), Own(k));
}

StatusOr<SigningKey> SigningKey::FromPem(std::string kid, std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (!k) return Status(StatusCode::kInvalidArgument, "not a PEM private key");
  auto key = Own(k);
  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC) return Status(StatusCode::kInvalidArgument, "not an EC key");
  return SigningKey(std::move(kid), key);
}

std::string SigningKey::PrivatePem() const {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

json SigningKey::PublicJwk() const {
  BIGNUM *x = nullptr, *y = nullptr;
  EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
  EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
  json j = {{"kty", "EC"},
            {"crv", "P-256"},
            {"x", crypto::Base64UrlEncode(BnPad(x))},
            {"y", crypto::Base64UrlEncode(BnPad(y))},
            {"kid", kid_},
            {"alg", "ES256"},
            {"use", "sig"}};
  BN_free(x);
  BN_free(y);
  return j;
}

std::string SigningKey::Sign(const json& claims) const {
  json header = {{"alg", "ES256"}, {"typ", "JWT"}, {"kid", kid_}};
  std::string input = crypto::Base64UrlEncode(header.dump()) + "." + crypto::Base64UrlEncode(claims.dump());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) !=
          1) {
    throw std::runtime_error("ES256 signing failed");
  }
  std::string der(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    throw std::runtime_error("ES256 signing failed");
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
  std::string raw = BnPad(ECDSA_SIG_get0_r(sig)) + BnPad(ECDSA_SIG_get0_s(sig));
  ECDSA_SIG_free(sig);
  return input + "." + crypto::Base64UrlEncode(raw);
}

StatusOr<KeySet> KeySet::FromJwks(const json& jwks) {
  if (!jwks.is_object() || !jwks.contains("keys") || !jwks["keys"].is_array()) {
    return Status(StatusCode::kInvalidArgument, "a JWKS document is an object with a `keys` array");
  }
  KeySet set;
  for (const auto& k : jwks["keys"]) {
    auto str = [&k](const char* f) { return k.contains(f) && k[f].is_string() ? k[f].get<std::string>() : ""; };
    if (!k.is_object() || str("kty") != "EC" || str("crv") != "P-256" || !k.contains("kid") || !k["kid"].is_string() ||
        !k.contains("x") || !k.contains("y") || !k["x"].is_string() || !k["y"].is_string()) {
      continue;
    }
    auto x = crypto::Base64UrlDecode(k["x"].get<std::string>());
    auto y = crypto::Base64UrlDecode(k["y"].get<std::string>());
    if (!x || !y || x->size() != 32 || y->size() != 32) continue;
    std::string point = "\x04" + *x + *y;
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    EVP_PKEY* key = nullptr;
    bool ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    if (ok && key) set.keys_[k["kid"].get<std::string>()] = Own(key);
  }
  return set;
}

StatusOr<std::string> KeyIdOf(std::string_view token) {
  auto parts = Split(token);
  if (!parts) return Unauthenticated("malformed token");
  auto header = DecodeJson(parts->header);
  if (!header || !header->contains("kid") || !(*header)["kid"].is_string())
    return Unauthenticated("token has no key id");
  return (*header)["kid"].get<std::string>();
}

StatusOr<json> Verify(std::string_view token, const KeySet& keys, const Expectations& expect) {
  auto parts = Split(token);
  if (!parts) return Unauthenticated("malformed token");
  auto header = DecodeJson(parts->header);
  if (!header) return Unauthenticated("malformed token header");
  if (!header->contains("alg") || (*header)["alg"] != "ES256") return Unauthenticated("token algorithm must be ES256");
  std::string kid = header->contains("kid") && (*header)["kid"].is_string() ? (*header)["kid"].get<std::string>() : "";
  auto key = keys.keys_.find(kid);
  if (key == keys.keys_.end()) return Unauthenticated("token signed by an unknown key");

  auto raw = crypto::Base64UrlDecode(parts->signature);
  if (!raw || raw->size() != 64) return Unauthenticated("bad token signature");
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  std::string_view input = std::string_view(token).substr(0, parts->header.size() + 1 + parts->payload.size());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  bool good = der_len > 0 && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key->second.get()) == 1 &&
              EVP_DigestVerify(ctx.get(), der, static_cast<size_t>(der_len),
                               reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  OPENSSL_free(der);
  if (!good) return Unauthenticated("bad token signature");

  auto claims = DecodeJson(parts->payload);
  if (!claims) return Unauthenticated("malformed token claims");
  const json& c = *claims;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(expect.now.time_since_epoch()).count();
  int64_t leeway = expect.leeway.count();
  // Times are whole seconds well inside int64 (a float or a huge value is refused, never converted).
  constexpr int64_t kMaxTime = int64_t{1} << 40;
  auto time_claim = [&c](const char* name) -> std::optional<int64_t> {
    if (!c.contains(name) || !c[name].is_number_integer()) return std::nullopt;
    int64_t v = c[name].get<int64_t>();
    if (v < 0 || v > kMaxTime) return std::nullopt;
    return v;
  };
  auto exp = time_claim("exp");
  if (!exp) return Unauthenticated("token has no valid expiry");
  if (*exp + leeway < now) return Unauthenticated("token expired");
  int64_t max_life = expect.max_lifetime.count();
  if (*exp - now > max_life + leeway) return Unauthenticated("token lives longer than the accepted maximum");
  if (c.contains("nbf")) {
    auto nbf = time_claim("nbf");
    if (!nbf) return Unauthenticated("token has an invalid nbf");
    if (*nbf - leeway > now) return Unauthenticated("token not yet valid");
  }
  if (c.contains("iat")) {
    auto iat = time_claim("iat");
    if (!iat) return Unauthenticated("token has an invalid iat");
    if (*iat - leeway > now) return Unauthenticated("token issued in the future");
    if (*exp - *iat > max_life + leeway) return Unauthenticated("token lives longer than the accepted maximum");
  }
  if (!expect.issuer.empty() && !(c.contains("iss") && c["iss"].is_string() && c["iss"] == expect.issuer)) {
    return Unauthenticated("token from another issuer");
  }
  if (!expect.audience.empty()) {
    bool ok = false;
    if (c.contains("aud") && c["aud"].is_string()) ok = c["aud"] == expect.audience;
    if (c.contains("aud") && c["aud"].is_array()) {
      for (const auto& a : c["aud"]) ok = ok || (a.is_string() && a == expect.audience);
    }
    if (!ok) return Unauthenticated("token for another audience");
  }
  return c;
}

}  // namespace flovyn::jwt
