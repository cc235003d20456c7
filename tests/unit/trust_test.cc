// The trust-boundary building blocks, each against the attack that found it: deep JSON, long-lived
// and non-canonical tokens, credentials in printed URLs, weak passwords, short secrets, encoded
// separators in paths; and the generated limits and security documents.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "engine/limits.h"
#include "engine/policy.h"
#include "flovyn/auth/jwt.h"
#include "flovyn/config/config.h"
#include "flovyn/crypto/crypto.h"
#include "flovyn/http/router.h"
#include "flovyn/json/bounded.h"
#include "identity.h"
#include "server_main.h"
#include "settings.h"

namespace flovyn {
namespace {

using nlohmann::json;

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string ReadDoc(const std::string& name) {
  std::ifstream in(std::string(FLOVYN_SOURCE_DIR) + "/docs/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(BoundedJsonTest, SeventyThousandNestedArraysAreRefusedNamingTheLimitWithoutRecursion) {
  auto deep = json_input::Parse(Nested(70000), "input", {256, 1 << 20});
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(deep.status().message().find("json_max_depth (256)"), std::string::npos) << deep.status().message();
  EXPECT_TRUE(json_input::Parse(Nested(256), "input", {256, 1 << 20}).ok());
  EXPECT_FALSE(json_input::Parse(Nested(257), "input", {256, 1 << 20}).ok());
  auto big = json_input::Parse("\"" + std::string(2000, 'x') + "\"", "input", {256, 1000});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("json_max_bytes"), std::string::npos);
  EXPECT_FALSE(json_input::Parse("{", "input").ok());
}

TEST(LimitsTest, DurationsPastOneYearAndNamesWithControlCharactersAreRefusedNamingTheLimit) {
  using engine::limits::Duration;
  EXPECT_TRUE(Duration(0, "x").ok());
  EXPECT_TRUE(Duration(engine::limits::kMaxDurationMs.value, "x").ok());
  auto huge = Duration(int64_t{1} << 62, "ScheduleTask.lease_ms");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.message(), "ScheduleTask.lease_ms exceeds the limit max_duration_ms (31536000000 ms)");
  EXPECT_FALSE(Duration(-1, "x").ok());
  EXPECT_FALSE(engine::limits::Name(std::string("a\0b", 3), "kind").ok());
  EXPECT_FALSE(engine::limits::Name(std::string(201, 'k'), "kind").ok());
  EXPECT_TRUE(engine::limits::Name(std::string(200, 'k'), "kind").ok());
}

TEST(LimitsTest, DocsLimitsMdIsGeneratedFromTheDeclarations) {
  EXPECT_EQ(ReadDoc("limits.md"), engine::limits::Markdown())
      << "docs/limits.md drifted: regenerate it with `flovyn-server --limits-catalogue > docs/limits.md`";
}

TEST(PolicyTest, DocsSecurityMdIsGeneratedFromThePolicyAndTheRouteTable) {
  EXPECT_EQ(ReadDoc("security.md"), server::SecurityDocument())
      << "docs/security.md drifted: regenerate it with `flovyn-server --security-matrix > docs/security.md`";
}

TEST(PolicyTest, MembersMayNotManageWorkerTokensOrCreateTenantsAndUnknownRolesGetNothing) {
  engine::Principal member;
  member.kind = engine::Principal::Kind::kApiKey;
  member.role = "member";
  EXPECT_EQ(engine::Authorize(member, engine::Action::kWorkerTokensManage).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(engine::Authorize(member, engine::Action::kTenantsCreate).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(engine::Authorize(member, engine::Action::kWorkerProtocol).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(engine::Authorize(member, engine::Action::kWorkflowsWrite).ok());
  engine::Principal owner = member;
  owner.role = "owner";
  EXPECT_TRUE(engine::Authorize(owner, engine::Action::kWorkerTokensManage).ok());
  engine::Principal odd = member;
  odd.role = "superuser";
  EXPECT_EQ(engine::Authorize(odd, engine::Action::kWorkflowsRead).code(), StatusCode::kPermissionDenied);
}

// ---------------------------------------------------------------- tokens

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

jwt::KeySet SetOf(const jwt::SigningKey& k) {
  auto set = jwt::KeySet::FromJwks(json{{"keys", json::array({k.PublicJwk()})}});
  EXPECT_TRUE(set.ok());
  return *set;
}

TEST(JwtLimitsTest, ATokenExpiringInTwoToTheSixtySecondsOrLivingPastTheMaximumIsRefused) {
  auto key = jwt::SigningKey::Generate("k1");
  jwt::Expectations e;
  json forever = {{"sub", "u"}, {"iat", Now()}, {"exp", int64_t{1} << 62}};
  EXPECT_FALSE(jwt::Verify(key.Sign(forever), SetOf(key), e).ok());
  json two_days = {{"sub", "u"}, {"exp", Now() + 2 * 86400}};
  EXPECT_EQ(jwt::Verify(key.Sign(two_days), SetOf(key), e).status().message(),
            "token lives longer than the accepted maximum");
  json float_exp = {{"sub", "u"}, {"exp", 1e300}};
  EXPECT_FALSE(jwt::Verify(key.Sign(float_exp), SetOf(key), e).ok());
  json fine = {{"sub", "u"}, {"iat", Now()}, {"exp", Now() + 300}};
  EXPECT_TRUE(jwt::Verify(key.Sign(fine), SetOf(key), e).ok());
}

TEST(JwtLimitsTest, PaddedOrNonCanonicalSignaturesAreRefused) {
  auto key = jwt::SigningKey::Generate("k1");
  std::string token = key.Sign(json{{"sub", "u"}, {"exp", Now() + 300}});
  jwt::Expectations e;
  ASSERT_TRUE(jwt::Verify(token, SetOf(key), e).ok());
  EXPECT_FALSE(jwt::Verify(token + "=", SetOf(key), e).ok());
  // 64 bytes encode to 86 characters whose last carries 4 unused bits: setting one gives another
  // spelling of the same bytes, which must not verify.
  std::string altered = token;
  char& last = altered.back();
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  last = alphabet[alphabet.find(last) | 1];
  ASSERT_NE(altered, token);
  EXPECT_FALSE(jwt::Verify(altered, SetOf(key), e).ok());
  EXPECT_FALSE(crypto::Base64UrlDecode("QQ==").has_value());
  EXPECT_FALSE(crypto::Base64UrlDecode("QR").has_value());  // non-zero unused bits
  EXPECT_EQ(crypto::Base64UrlDecode("QQ").value_or(""), "A");
  EXPECT_FALSE(crypto::Base64UrlDecode("a+/b").has_value());
}

// ---------------------------------------------------------------- printed configuration

TEST(RedactTest, CredentialsInEveryUrlFormAreHidden) {
  using config::RedactUrl;
  EXPECT_EQ(RedactUrl("postgres://u:pw@db/x?sslmode=require&password=qs"),
            "postgres://u:***@db/x?sslmode=require&password=***");
  EXPECT_EQ(RedactUrl("host=db user=u password = s3cret dbname=x"), "host=db user=u password=*** dbname=x");
  EXPECT_EQ(RedactUrl("host=db password='a b\\' c' dbname=x"), "host=db password=*** dbname=x");
  EXPECT_EQ(RedactUrl("nats://tok3n@nats:4222"), "nats://***@nats:4222");
  EXPECT_EQ(RedactUrl("nats://user:pw@nats:4222"), "nats://user:***@nats:4222");
  EXPECT_EQ(RedactUrl("http://collector:4317?token=abc"), "http://collector:4317?token=***");
  EXPECT_EQ(RedactUrl("u:pw@collector:4317"), "u:***@collector:4317");
  EXPECT_EQ(RedactUrl("postgres://db/x"), "postgres://db/x");
}

TEST(RedactTest, PrintConfigHidesCredentialsOfNatsAndOtlpAndDatabaseQueryPasswords) {
  std::map<std::string, std::string> env = {{"DATABASE_URL", "postgres://db/x?password=dbpw1234"},
                                            {"WORKER_TOKEN_SECRET", "0123456789abcdef0123456789abcdef"},
                                            {"NATS__URL", "nats://natsuser:natspw99@nats:4222"},
                                            {"OTEL__OTLP_ENDPOINT", "http://otlpuser:otlppw77@collector:4317"}};
  auto v = config::Load(server::Schema(), {{}, env});
  ASSERT_TRUE(v.ok()) << v.status().message();
  std::string printed = v->Print();
  for (const char* secret : {"dbpw1234", "natspw99", "otlppw77", "0123456789abcdef"}) {
    EXPECT_EQ(printed.find(secret), std::string::npos) << secret << " printed:\n" << printed;
  }
  EXPECT_NE(printed.find("nats://natsuser:***@nats:4222"), std::string::npos) << printed;
}

TEST(SecretLengthTest, AWorkerTokenSecretShorterThan32CharactersIsRefused) {
  auto v =
      config::Load(server::Schema(), {{}, {{"DATABASE_URL", "postgres://db/x"}, {"WORKER_TOKEN_SECRET", "short"}}});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("WORKER_TOKEN_SECRET"), std::string::npos) << v.status().message();
  EXPECT_NE(v.status().message().find("32"), std::string::npos) << v.status().message();
}

TEST(PasswordPolicyTest, TenSpacesRepeatedCharactersAndTheEmailAreRefused) {
  EXPECT_NE(app::PasswordProblem("          ", "a@b.c"), "");
  EXPECT_NE(app::PasswordProblem("aaaaaaaaaaaa", "a@b.c"), "");
  EXPECT_NE(app::PasswordProblem("abababababab", "a@b.c"), "");
  EXPECT_NE(app::PasswordProblem("short", "a@b.c"), "");
  EXPECT_NE(app::PasswordProblem("Ada@Example.com", "ada@example.com"), "");
  EXPECT_EQ(app::PasswordProblem("correct-horse-1", "ada@example.com"), "");
}

// ---------------------------------------------------------------- routing

TEST(RawPathRoutingTest, AnEncodedSlashStaysInsideItsSegmentAndControlCharactersAreFlagged) {
  http::Router r;
  r.Add("GET", "/api/tenants/{tenant}/workflows", http::Sync([](const http::Request&) { return http::Response{}; }));
  r.Add("GET", "/api/tenants/{tenant}", http::Sync([](const http::Request&) { return http::Response{}; }));
  auto m = r.Find("GET", "/api/tenants/acme%2Fworkflows");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/api/tenants/{tenant}");
  EXPECT_EQ(m.params["tenant"], "acme/workflows");
  auto nul = r.Find("GET", "/api/tenants/acme%00zzz/workflows");
  ASSERT_NE(nul.route, nullptr);
  EXPECT_EQ(nul.bad_param, "tenant");
  EXPECT_TRUE(r.Find("GET", "/api/tenants/acme/workflows").bad_param.empty());
}

}  // namespace
}  // namespace flovyn
