#include "flovyn/config/config.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "app_settings.h"
#include "harness.h"
#include "settings.h"

namespace flovyn::config {
namespace {

std::map<std::string, std::string> BaseEnv() {
  return {{"DATABASE_URL", "postgres://flovyn:s3cret-pw@db:5432/flovyn"},
          {"WORKER_TOKEN_SECRET", "wts-value-0123456789abcdef0123456789"}};
}

TEST(ConfigTest, EnvironmentNamesFollowTheNestingConvention) {
  EXPECT_EQ(EnvNameFor("database_url"), "DATABASE_URL");
  EXPECT_EQ(EnvNameFor("nats.url"), "NATS__URL");
  EXPECT_EQ(EnvNameFor("flovyn_security.enabled"), "FLOVYN_SECURITY__ENABLED");
  EXPECT_EQ(EnvNameFor("shutdown.delay_secs"), "SHUTDOWN__DELAY_SECS");
}

TEST(ConfigTest, EveryServerVariableOfTheContractIsDeclared) {
  const auto& schema = server::Schema();
  for (const char* var :
       {"DATABASE_URL", "SERVER_PORT", "GRPC_SERVER_PORT", "NATS__ENABLED", "NATS__URL", "FLOVYN_SECURITY__ENABLED",
        "WORKER_TOKEN_SECRET", "OTEL__ENABLED", "OTEL__OTLP_ENDPOINT", "METRICS__ENABLED", "METRICS__PORT", "RUST_LOG",
        "SHUTDOWN__DELAY_SECS", "SHUTDOWN__TIMEOUT_SECS"}) {
    bool found = false;
    for (const auto& s : schema.settings()) found = found || EnvNameFor(s.key) == var;
    EXPECT_TRUE(found) << var;
  }
}

TEST(ConfigTest, ReadingAnUndeclaredSettingStopsTheProgramInsteadOfReadingZero) {
  auto v = Load(server::Schema(), {{}, BaseEnv()});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->Int("engine.max_poll_ms"), 60000);  // declared: its value
  EXPECT_DEATH((void)v->Int("engine.max_pol_ms"), "undeclared setting 'engine.max_pol_ms'");
  EXPECT_DEATH((void)v->Bool("nats.enable"), "undeclared setting 'nats.enable'");
}

TEST(ConfigTest, DefaultsMatchTheContract) {
  auto v = Load(server::Schema(), {{}, BaseEnv()});
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->Int("server_port"), 8000);
  EXPECT_EQ(v->Int("grpc_server_port"), 9090);
  EXPECT_FALSE(v->Bool("nats.enabled"));
  EXPECT_EQ(v->String("nats.url"), "nats://localhost:4222");
  EXPECT_TRUE(v->Bool("flovyn_security.enabled"));
  EXPECT_FALSE(v->Bool("metrics.enabled"));
  EXPECT_EQ(v->Int("metrics.port"), 9091);
  EXPECT_EQ(v->String("rust_log"), "warn");
  EXPECT_EQ(v->Int("shutdown.delay_secs"), 0);
  EXPECT_EQ(v->Int("shutdown.timeout_secs"), 25);
}

TEST(ConfigTest, SecurityOnWithoutWorkerTokenSecretIsRefusedNamingTheVariable) {
  auto v = Load(server::Schema(), {{}, {{"DATABASE_URL", "postgres://x@y/z"}}});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("WORKER_TOKEN_SECRET"), std::string::npos) << v.status().message();
  auto off =
      Load(server::Schema(), {{}, {{"DATABASE_URL", "postgres://x@y/z"}, {"FLOVYN_SECURITY__ENABLED", "false"}}});
  EXPECT_TRUE(off.ok()) << off.status().message();
}

TEST(ConfigTest, AllErrorsAreReportedTogether) {
  auto v = Load(
      server::Schema(),
      {{"--bogus=1"},
       {{"SERVER_PORT", "eighty"}, {"NATS__ENABLED", "maybe"}, {"METRICS__PORT", "70000"}, {"LOG_FORMAT", "xml"}}});
  ASSERT_FALSE(v.ok());
  const std::string& m = v.status().message();
  for (const char* needle : {"DATABASE_URL", "WORKER_TOKEN_SECRET", "SERVER_PORT", "NATS__ENABLED", "METRICS__PORT",
                             "LOG_FORMAT", "--bogus"}) {
    EXPECT_NE(m.find(needle), std::string::npos) << needle << " missing from: " << m;
  }
  EXPECT_NE(m.find("7 problems"), std::string::npos) << m;
}

TEST(ConfigTest, FileIsOverriddenByEnvironmentWhichIsOverriddenByFlags) {
  std::string dir = testing::MakeTempDir("flovyn-config");
  std::string path = dir + "/flovyn.toml";
  std::ofstream(path) << "server_port = 7001\ngrpc_server_port = 7002\nrust_log = \"debug\"\n"
                         "[nats]\nenabled = true\nurl = \"nats://file:4222\"\n";
  auto env = BaseEnv();
  env["CONFIG_FILE"] = path;
  env["GRPC_SERVER_PORT"] = "8002";
  env["NATS__URL"] = "nats://env:4222";
  auto v = Load(server::Schema(), {{"--nats.url=nats://flag:4222"}, env});
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->Int("server_port"), 7001);
  EXPECT_EQ(v->SourceOf("server_port"), Source::kFile);
  EXPECT_EQ(v->Int("grpc_server_port"), 8002);
  EXPECT_EQ(v->SourceOf("grpc_server_port"), Source::kEnvironment);
  EXPECT_EQ(v->String("nats.url"), "nats://flag:4222");
  EXPECT_EQ(v->SourceOf("nats.url"), Source::kFlag);
  EXPECT_TRUE(v->Bool("nats.enabled"));
  EXPECT_EQ(v->String("rust_log"), "debug");
}

TEST(ConfigTest, UnknownKeysInTheFileAndBadTomlAreErrors) {
  std::string dir = testing::MakeTempDir("flovyn-config");
  std::ofstream(dir + "/a.toml") << "server_prot = 1\n";
  auto v = Load(server::Schema(), {{"--config", dir + "/a.toml"}, BaseEnv()});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("server_prot"), std::string::npos);
  std::ofstream(dir + "/b.toml") << "server_port = = 3\n";
  v = Load(server::Schema(), {{"--config", dir + "/b.toml"}, BaseEnv()});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("b.toml"), std::string::npos);
}

TEST(ConfigTest, LogLevelAliasIsUsedOnlyWithoutRustLog) {
  auto env = BaseEnv();
  env["LOG_LEVEL"] = "debug";
  auto v = Load(server::Schema(), {{}, env});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->String("rust_log"), "debug");
  env["RUST_LOG"] = "error";
  v = Load(server::Schema(), {{}, env});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->String("rust_log"), "error");
}

TEST(ConfigTest, PrintedConfigNeverContainsSecrets) {
  auto v = Load(server::Schema(), {{}, BaseEnv()});
  ASSERT_TRUE(v.ok());
  std::string printed = v->Print();
  EXPECT_EQ(printed.find("s3cret-pw"), std::string::npos) << printed;
  EXPECT_EQ(printed.find("wts-value"), std::string::npos) << printed;
  EXPECT_NE(printed.find("postgres://flovyn:***@db:5432/flovyn"), std::string::npos) << printed;
  EXPECT_NE(printed.find("worker_token_secret = \"[redacted]\""), std::string::npos) << printed;
}

TEST(ConfigTest, RedactUrlHandlesKeywordForm) {
  EXPECT_EQ(RedactUrl("host=db user=x password=hunter2 dbname=y"), "host=db user=x password=*** dbname=y");
  EXPECT_EQ(RedactUrl("postgres://u@h/db"), "postgres://u@h/db");
}

}  // namespace
}  // namespace flovyn::config

namespace flovyn::config {
namespace {

TEST(ConfigDocsTest, ConfigurationMdListsEverySettingAsDeclared) {
  std::ifstream in(std::string(FLOVYN_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  std::string generated = "## " + server::Schema().program() + "\n\n" + server::Schema().ToMarkdown();
  EXPECT_NE(doc.find(generated), std::string::npos)
      << "docs/configuration.md drifted from server/src/settings.cc: regenerate it (see its header)";
  std::string app = "## " + app::Schema().program() + "\n\n" + app::Schema().ToMarkdown();
  EXPECT_NE(doc.find(app), std::string::npos)
      << "docs/configuration.md drifted from app/src/app_settings.cc: regenerate it (see its header)";
}

}  // namespace
}  // namespace flovyn::config
