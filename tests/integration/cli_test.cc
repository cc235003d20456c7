// The command line and configuration of the real binary.
#include <signal.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;

TEST(CliTest, SecurityOnWithoutWorkerTokenSecretRefusesToStartNamingTheVariable) {
  ChildProcess p(ServerBinary(), {}, {{"DATABASE_URL", Postgres::Shared().Url()}});
  EXPECT_EQ(p.Wait(10s), 2);
  EXPECT_NE(p.Log().find("WORKER_TOKEN_SECRET is required"), std::string::npos) << p.Log();
}

TEST(CliTest, AllConfigurationErrorsAreReportedTogether) {
  ChildProcess p(ServerBinary(), {}, {{"SERVER_PORT", "x"}, {"NATS__ENABLED", "perhaps"}});
  EXPECT_EQ(p.Wait(10s), 2);
  for (const char* v : {"DATABASE_URL", "WORKER_TOKEN_SECRET", "SERVER_PORT", "NATS__ENABLED"}) {
    EXPECT_NE(p.Log().find(v), std::string::npos) << v << "\n" << p.Log();
  }
}

TEST(CliTest, FileThenEnvironmentThenFlagAndPrintConfigShowsNoSecret) {
  std::string dir = MakeTempDir("flovyn-cli");
  std::ofstream(dir + "/server.toml") << "server_port = 7001\ngrpc_server_port = 7002\nmetrics.port = 7003\n"
                                         "worker_token_secret = \"file-secret-value-0123456789abcdef0123\"\n";
  ChildProcess p(ServerBinary(), {"--print-config", "--metrics.port=9003"},
                 {{"CONFIG_FILE", dir + "/server.toml"},
                  {"GRPC_SERVER_PORT", "8002"},
                  {"METRICS__PORT", "8003"},
                  {"DATABASE_URL", "postgres://flovyn:db-password-value@db:5432/flovyn"}});
  ASSERT_EQ(p.Wait(10s), 0) << p.Log();
  std::string out = p.Log();
  EXPECT_NE(out.find("server_port = 7001  # file"), std::string::npos) << out;
  EXPECT_NE(out.find("grpc_server_port = 8002  # environment"), std::string::npos) << out;
  EXPECT_NE(out.find("metrics.port = 9003  # flag"), std::string::npos) << out;
  EXPECT_EQ(out.find("db-password-value"), std::string::npos) << out;
  EXPECT_EQ(out.find("file-secret-value"), std::string::npos) << out;
}

TEST(CliTest, NoSecretIsLoggedDuringARun) {
  std::string url = Postgres::Shared().CreateDatabase();
  ServerProcess server(
      {.database_url = url,
       .env = {{"RUST_LOG", "trace"}, {"WORKER_TOKEN_SECRET", "very-secret-token-key-0123456789abcdef"}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  server.process().Signal(SIGTERM);
  server.process().Wait(10s);
  std::string log = server.process().Log();
  EXPECT_EQ(log.find("very-secret-token-key-0123456789abcdef"), std::string::npos) << log;
  EXPECT_EQ(log.find(url), std::string::npos) << log;
}

TEST(CliTest, JsonLogFormat) {
  ServerProcess server({.database_url = Postgres::Shared().CreateDatabase(), .env = {{"LOG_FORMAT", "json"}}});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  std::string log = server.process().Log();
  std::string first = log.substr(0, log.find('\n'));
  auto j = nlohmann::json::parse(first);
  EXPECT_EQ(j["level"], "info");
  EXPECT_TRUE(j["msg"].is_string());
  EXPECT_TRUE(j["ts"].is_string());
}

TEST(CliTest, VersionAndHelp) {
  ChildProcess v(ServerBinary(), {"--version"}, {});
  EXPECT_EQ(v.Wait(10s), 0);
  EXPECT_NE(v.Log().find("flovyn-server 0.1.0"), std::string::npos);
  ChildProcess h(ServerBinary(), {"--help"}, {});
  EXPECT_EQ(h.Wait(10s), 0);
  EXPECT_NE(h.Log().find("SHUTDOWN__TIMEOUT_SECS"), std::string::npos);
}

}  // namespace
}  // namespace flovyn::testing
