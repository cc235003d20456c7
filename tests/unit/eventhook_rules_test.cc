// The eventhook plugin's decisions without a database: signatures as GitHub, Stripe and Slack
// send them (valid, altered, replayed outside the tolerance), API keys and basic credentials,
// event paths, route conditions and input mapping.
#include <thread>

#include <gtest/gtest.h>

#include "event_rules.h"
#include "eventhook_plugin.h"

namespace flovyn::plugins {
namespace {

using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

Verifier Parse(const json& spec) {
  auto v = ParseVerifier(spec);
  EXPECT_TRUE(v.ok()) << v.status().message();
  return v.ok() ? *v : Verifier{};
}

TEST(EventhookVerifyTest, GithubSignatureMatchesTheDocumentedExample) {
  // The example in GitHub's "Validating webhook deliveries".
  Verifier v = Parse({{"type", "hmac"}, {"scheme", "github"}});
  Headers h = {{"x-hub-signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}};
  EXPECT_TRUE(Verify(v, "It's a Secret to Everybody", "", h, "Hello, World!", 0).ok());
  EXPECT_FALSE(Verify(v, "It's a Secret to Everybody", "", h, "Hello, World?", 0).ok()) << "altered body";
  EXPECT_FALSE(Verify(v, "another secret", "", h, "Hello, World!", 0).ok()) << "wrong secret";
  auto missing = Verify(v, "It's a Secret to Everybody", "", {}, "Hello, World!", 0);
  EXPECT_EQ(missing.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(missing.message().find("X-Hub-Signature-256"), std::string::npos);
}

TEST(EventhookVerifyTest, StripeSignatureIsCheckedWithItsTimestampAndTolerance) {
  Verifier v = Parse({{"type", "hmac"}, {"scheme", "stripe"}, {"toleranceSeconds", 300}});
  std::string secret = "whsec_test", body = R"({"id":"evt_1","type":"payment_intent.succeeded"})";
  int64_t t = 1764320000;
  std::string sig = crypto::Hex(crypto::HmacSha256(secret, std::to_string(t) + "." + body));
  Headers h = {{"stripe-signature", "t=" + std::to_string(t) + ",v1=" + sig + ",v0=ignored"}};
  EXPECT_TRUE(Verify(v, secret, "", h, body, t + 10).ok());
  auto replayed = Verify(v, secret, "", h, body, t + 301);
  EXPECT_FALSE(replayed.ok()) << "a replay outside the tolerance is refused";
  EXPECT_NE(replayed.message().find("tolerance"), std::string::npos);
  EXPECT_FALSE(Verify(v, secret, "", h, body + " ", t).ok());
  // During a secret rotation Stripe sends two v1 signatures: either may match.
  Headers two = {{"stripe-signature", "t=" + std::to_string(t) + ",v1=" + std::string(64, '0') + ",v1=" + sig}};
  EXPECT_TRUE(Verify(v, secret, "", two, body, t).ok());
  EXPECT_FALSE(Verify(v, secret, "", {{"stripe-signature", "v1=" + sig}}, body, t).ok()) << "no timestamp";
}

TEST(EventhookVerifyTest, SlackSignatureCoversTheTimestamp) {
  Verifier v = Parse({{"type", "hmac"}, {"scheme", "slack"}});
  std::string secret = "8f742231b10e8888abcd99yyyzzz85a5", body = "token=x&team_id=T1";
  int64_t t = 1531420618;
  std::string sig = "v0=" + crypto::Hex(crypto::HmacSha256(secret, "v0:" + std::to_string(t) + ":" + body));
  Headers h = {{"x-slack-signature", sig}, {"x-slack-request-timestamp", std::to_string(t)}};
  EXPECT_TRUE(Verify(v, secret, "", h, body, t + 60).ok());
  EXPECT_FALSE(Verify(v, secret, "", h, body, t + 3600).ok());
  Headers moved = {{"x-slack-signature", sig}, {"x-slack-request-timestamp", std::to_string(t + 1)}};
  EXPECT_FALSE(Verify(v, secret, "", moved, body, t).ok()) << "the timestamp is signed";
}

TEST(EventhookVerifyTest, PlainHmacWithBase64AndSha1) {
  Verifier v = Parse({{"type", "hmac"}, {"header", "X-Sig"}, {"algorithm", "sha1"}, {"encoding", "base64"}});
  std::string sig = crypto::Base64Encode(crypto::Hmac(crypto::Digest::kSha1, "k", "payload"));
  EXPECT_TRUE(Verify(v, "k", "", {{"x-sig", sig}}, "payload", 0).ok());
  EXPECT_FALSE(
      Verify(v, "k", "", {{"x-sig", crypto::Hex(crypto::Hmac(crypto::Digest::kSha1, "k", "payload"))}}, "payload", 0)
          .ok());
}

TEST(EventhookVerifyTest, ApiKeyAndBasicCompareAgainstAStoredHash) {
  Verifier key = Parse({{"type", "api_key"}, {"header", "X-Api-Key"}});
  std::string stored = CredentialHash("server-key", "k-123");
  EXPECT_TRUE(Verify(key, stored, "server-key", {{"x-api-key", "k-123"}}, "", 0).ok());
  EXPECT_FALSE(Verify(key, stored, "server-key", {{"x-api-key", "k-124"}}, "", 0).ok());
  Verifier basic = Parse({{"type", "basic"}});
  std::string pair_hash = CredentialHash("server-key", "user:pa ss");
  std::string header = "Basic " + crypto::Base64Encode("user:pa ss");
  EXPECT_TRUE(Verify(basic, pair_hash, "server-key", {{"authorization", header}}, "", 0).ok());
  EXPECT_FALSE(
      Verify(basic, pair_hash, "server-key", {{"authorization", "Basic " + crypto::Base64Encode("user:x")}}, "", 0)
          .ok());
  EXPECT_TRUE(Verify(Parse({{"type", "none"}}), "", "", {}, "", 0).ok());
}

TEST(EventhookVerifyTest, BadVerifierSpecsAreRefused) {
  for (const json& bad : {json{{"type", "magic"}}, json{{"type", "hmac"}, {"scheme", "paypal"}},
                          json{{"type", "hmac"}, {"header", "X"}, {"algorithm", "md5"}},
                          json{{"type", "hmac"}, {"header", "X"}, {"encoding", "rot13"}},
                          json{{"type", "hmac"}, {"header", "X"}, {"toleranceSeconds", 0}}, json{{"type", 3}}}) {
    EXPECT_FALSE(ParseVerifier(bad).ok()) << bad.dump();
  }
}

InboundEvent Push() {
  InboundEvent e;
  e.id = "e1";
  e.type = "push";
  e.headers = {{"x-github-event", "push"}, {"x-github-delivery", "d-1"}};
  e.body =
      json::parse(R"({"ref":"refs/heads/main","repository":{"full_name":"acme/api"},"commits":[{"id":"c1"}],"n":3})");
  return e;
}

TEST(EventhookRulesTest, PathsReachHeadersObjectsAndArrays) {
  InboundEvent e = Push();
  EXPECT_EQ(*Resolve(e, "header.X-GitHub-Event"), "push");
  EXPECT_EQ(*Resolve(e, "body.repository.full_name"), "acme/api");
  EXPECT_EQ(*Resolve(e, "body.commits.0.id"), "c1");
  EXPECT_EQ(*ResolveText(e, "body.n"), "3");
  EXPECT_FALSE(Resolve(e, "body.commits.1.id"));
  EXPECT_FALSE(Resolve(e, "body.ref.x"));
  EXPECT_FALSE(Resolve(e, "header.x-missing"));
  for (std::string bad : {"", "query.x", "body..x", "header.", "bodyx"}) EXPECT_FALSE(ValidatePath(bad).ok()) << bad;
}

TEST(EventhookRulesTest, ConditionsEqualsInExistsAndPrefix) {
  InboundEvent e = Push();
  auto check = [&](const json& spec) {
    auto c = ParseConditions(spec);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c.ok() && Holds(*c, e);
  };
  EXPECT_TRUE(check(json::array({{{"path", "body.ref"}, {"op", "equals"}, {"value", "refs/heads/main"}}})));
  EXPECT_FALSE(check(json::array({{{"path", "body.ref"}, {"op", "equals"}, {"value", "refs/heads/dev"}}})));
  EXPECT_TRUE(check(json::array({{{"path", "body.n"}, {"op", "in"}, {"value", {1, 2, 3}}}})));
  EXPECT_FALSE(check(json::array({{{"path", "body.n"}, {"op", "in"}, {"value", {4}}}})));
  EXPECT_TRUE(check(json::array({{{"path", "header.x-github-delivery"}, {"op", "exists"}}})));
  EXPECT_FALSE(check(json::array({{{"path", "body.deleted"}, {"op", "exists"}}})));
  EXPECT_TRUE(check(json::array({{{"path", "body.ref"}, {"op", "prefix"}, {"value", "refs/heads/"}}})));
  EXPECT_FALSE(check(json::array({{{"path", "body.ref"}, {"op", "prefix"}, {"value", "refs/tags/"}},
                                  {{"path", "body.n"}, {"op", "equals"}, {"value", 3}}})))
      << "every condition must hold";
  EXPECT_FALSE(ParseConditions(json::array({{{"path", "body.x"}, {"op", "like"}}})).ok());
  EXPECT_FALSE(ParseConditions(json::array({{{"path", "body.x"}, {"op", "in"}, {"value", 1}}})).ok());
}

TEST(EventhookRulesTest, InputIsTheWholeEventAPathOrAMapping) {
  InboundEvent e = Push();
  EXPECT_EQ(MapInput(nullptr, e)["body"]["ref"], "refs/heads/main");
  EXPECT_EQ(MapInput(nullptr, e)["headers"]["x-github-event"], "push");
  EXPECT_EQ(MapInput("body.repository", e), json({{"full_name", "acme/api"}}));
  json mapped = MapInput({{"repo", "body.repository.full_name"}, {"gone", "body.nothing"}}, e);
  EXPECT_EQ(mapped, json({{"repo", "acme/api"}, {"gone", nullptr}}));
  EXPECT_FALSE(ValidateInputMapping(json{{"repo", 5}}).ok());
  EXPECT_FALSE(ValidateInputMapping("query.x").ok());
}

TEST(EventhookRatesTest, BucketsRefillAndStayWithinTheirBound) {
  SourceRates rates(3);
  EXPECT_TRUE(rates.Allow("a", 1, 2));
  EXPECT_TRUE(rates.Allow("a", 1, 2));
  EXPECT_FALSE(rates.Allow("a", 1, 2)) << "the burst is spent";
  EXPECT_TRUE(rates.Allow("b", 1, 1));
  EXPECT_TRUE(rates.Allow("c", 1, 1));
  // Past the bound with every bucket in use: a fourth source is refused, nothing grows.
  EXPECT_FALSE(rates.Allow("d", 1, 1));
  EXPECT_EQ(rates.size(), 3u);
  // Idle buckets refill and are dropped to make room.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(rates.Allow("d", 1, 1));
  EXPECT_LE(rates.size(), 3u);
}

}  // namespace
}  // namespace flovyn::plugins
