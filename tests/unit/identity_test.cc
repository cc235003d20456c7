// The console's identity building blocks: ES256 tokens, sealing, passwords, cookies, slugs.
#include "identity.h"

#include <gtest/gtest.h>

#include "app_settings.h"
#include "flovyn/auth/jwt.h"
#include "flovyn/crypto/crypto.h"

namespace flovyn::app {
namespace {

using nlohmann::json;
using std::chrono::system_clock;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(system_clock::now().time_since_epoch()).count();
}

json Claims(int64_t exp_in = 300) {
  return {{"sub", "u1"},
          {"iss", "https://console.example"},
          {"aud", "flovyn-server"},
          {"iat", Now()},
          {"exp", Now() + exp_in},
          {"org", {{"slug", "acme"}, {"role", "owner"}}}};
}

jwt::Expectations Expect() {
  jwt::Expectations e;
  e.issuer = "https://console.example";
  e.audience = "flovyn-server";
  return e;
}

jwt::KeySet SetOf(const jwt::SigningKey& k) {
  auto set = jwt::KeySet::FromJwks(json{{"keys", json::array({k.PublicJwk()})}});
  EXPECT_TRUE(set.ok());
  return *set;
}

TEST(JwtTest, SignedTokenVerifiesAgainstThePublishedKey) {
  auto key = jwt::SigningKey::Generate("k1");
  std::string token = key.Sign(Claims());
  auto claims = jwt::Verify(token, SetOf(key), Expect());
  ASSERT_TRUE(claims.ok()) << claims.status().message();
  EXPECT_EQ((*claims)["org"]["slug"], "acme");
  EXPECT_EQ(*jwt::KeyIdOf(token), "k1");
  // The private key survives a PEM round trip.
  auto again = jwt::SigningKey::FromPem("k1", key.PrivatePem());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(jwt::Verify(again->Sign(Claims()), SetOf(key), Expect()).ok());
}

TEST(JwtTest, TamperedExpiredForeignAndUnsignedTokensAreRefused) {
  auto key = jwt::SigningKey::Generate("k1");
  auto keys = SetOf(key);
  std::string token = key.Sign(Claims());
  // Payload changed after signing.
  auto dot1 = token.find('.'), dot2 = token.rfind('.');
  json other = Claims();
  other["org"]["slug"] = "other";
  std::string tampered = token.substr(0, dot1 + 1) + crypto::Base64UrlEncode(other.dump()) + token.substr(dot2);
  EXPECT_EQ(jwt::Verify(tampered, keys, Expect()).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(jwt::Verify(key.Sign(Claims(-120)), keys, Expect()).status().message(), "token expired");
  json aud = Claims();
  aud["aud"] = "another-service";
  EXPECT_EQ(jwt::Verify(key.Sign(aud), keys, Expect()).status().message(), "token for another audience");
  json iss = Claims();
  iss["iss"] = "https://evil.example";
  EXPECT_EQ(jwt::Verify(key.Sign(iss), keys, Expect()).status().message(), "token from another issuer");
  // A key that is not published.
  auto stranger = jwt::SigningKey::Generate("k1");
  EXPECT_FALSE(jwt::Verify(stranger.Sign(Claims()), keys, Expect()).ok());
  // alg "none" with no signature, and HS256 claiming the same kid.
  std::string none =
      crypto::Base64UrlEncode(R"({"alg":"none","kid":"k1"})") + "." + crypto::Base64UrlEncode(Claims().dump()) + ".";
  EXPECT_EQ(jwt::Verify(none, keys, Expect()).status().message(), "token algorithm must be ES256");
  std::string hs =
      crypto::Base64UrlEncode(R"({"alg":"HS256","kid":"k1"})") + "." + crypto::Base64UrlEncode(Claims().dump());
  hs += "." + crypto::Base64UrlEncode(crypto::HmacSha256("x", hs));
  EXPECT_EQ(jwt::Verify(hs, keys, Expect()).status().message(), "token algorithm must be ES256");
  EXPECT_FALSE(jwt::Verify("not-a-token", keys, Expect()).ok());
}

TEST(CryptoTest, SealOpensOnlyWithTheSameKeyAndUnalteredBox) {
  std::string key = crypto::Hkdf("secret-one-0123456789abcdef012345", "salt", "info", 32);
  std::string box = crypto::Seal(key, "private key pem", "kid-1");
  EXPECT_EQ(*crypto::Open(key, box, "kid-1"), "private key pem");
  EXPECT_FALSE(crypto::Open(key, box, "kid-2"));  // bound to its key id
  std::string other = crypto::Hkdf("secret-two-0123456789abcdef012345", "salt", "info", 32);
  EXPECT_FALSE(crypto::Open(other, box, "kid-1"));
  std::string altered = box;
  altered[15] ^= 1;
  EXPECT_FALSE(crypto::Open(key, altered, "kid-1"));
}

TEST(CryptoTest, Base64UrlRoundTripsEveryLength) {
  for (size_t n = 0; n < 40; ++n) {
    std::string bytes = crypto::RandomBytes(n);
    auto back = crypto::Base64UrlDecode(crypto::Base64UrlEncode(bytes));
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(*back, bytes);
  }
  EXPECT_FALSE(crypto::Base64UrlDecode("ab$d"));
}

TEST(PasswordTest, Argon2idHashVerifiesOnlyTheRightPassword) {
  std::string h = HashPassword("correct horse battery");
  EXPECT_EQ(h.rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(VerifyPassword(h, "correct horse battery"));
  EXPECT_FALSE(VerifyPassword(h, "correct horse batterY"));
  EXPECT_NE(HashPassword("correct horse battery"), h);  // salted
}

TEST(SessionCookiesTest, ForgedOrAlteredCookiesAreRejected) {
  SessionCookies c("0123456789abcdef0123456789abcdef");
  std::string v = c.Wrap("token-abc");
  EXPECT_EQ(*c.Unwrap(v), "token-abc");
  EXPECT_FALSE(c.Unwrap("token-abd" + v.substr(v.find('.'))));
  EXPECT_FALSE(c.Unwrap("token-abc"));
  EXPECT_FALSE(SessionCookies("another-secret-0123456789abcdef012").Unwrap(v));
  EXPECT_NE(c.AnonymousCsrf("visitor-1"), c.AnonymousCsrf("visitor-2"));
}

TEST(SlugTest, OrganisationNamesBecomeTenantSlugs) {
  EXPECT_EQ(SlugFrom("Acme Corp."), "acme-corp");
  EXPECT_EQ(SlugFrom("  Ünïcode & Co  "), "n-code-co");
  EXPECT_TRUE(ValidSlug("acme-corp"));
  EXPECT_FALSE(ValidSlug("ac"));
  EXPECT_FALSE(ValidSlug("-acme"));
  EXPECT_FALSE(ValidSlug("Acme"));
  EXPECT_FALSE(ValidSlug("acme/../x"));
}

TEST(AppConfigTest, EveryAppVariableOfTheContractIsDeclaredWithItsDefault) {
  auto v = config::Load(Schema(), {{},
                                   {{"DATABASE_URL", "postgres://db/app"},
                                    {"BACKEND_URL", "http://server:8000"},
                                    {"BETTER_AUTH_SECRET", "0123456789abcdef0123456789abcdef"},
                                    {"NEXT_PUBLIC_APP_URL", "https://console.example"}}});
  ASSERT_TRUE(v.ok()) << v.status().message();
  Settings s = Settings::From(*v);
  EXPECT_EQ(s.port, 3000);
  EXPECT_EQ(s.node_env, "production");
  EXPECT_TRUE(s.production());
  EXPECT_FALSE(s.trust_host);
}

TEST(AppConfigTest, ShortSecretAndMissingVariablesAreReportedTogetherByName) {
  auto v = config::Load(Schema(), {{}, {{"BETTER_AUTH_SECRET", "too-short"}}});
  ASSERT_FALSE(v.ok());
  const std::string& m = v.status().message();
  EXPECT_NE(m.find("BETTER_AUTH_SECRET must be at least 32 characters long, got 9"), std::string::npos) << m;
  EXPECT_EQ(m.find("too-short"), std::string::npos) << "the secret itself is never shown";
  for (const char* var : {"DATABASE_URL", "BACKEND_URL", "NEXT_PUBLIC_APP_URL"}) {
    EXPECT_NE(m.find(var), std::string::npos) << var;
  }
}

}  // namespace
}  // namespace flovyn::app
