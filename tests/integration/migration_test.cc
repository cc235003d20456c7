// Migrations (operations.md §3) with real server processes on a real database.
#include <signal.h>

#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;

TEST(MigrationTest, ThreeServersOnAnEmptyDatabaseAllBecomeReadyAndApplyEachMigrationOnce) {
  std::string url = Postgres::Shared().CreateDatabase("mig");
  std::string db = url.substr(url.rfind('/') + 1);
  std::vector<std::unique_ptr<ServerProcess>> servers;
  for (int i = 0; i < 3; ++i)
    servers.push_back(std::make_unique<ServerProcess>(ServerProcess::Options{.database_url = url}));
  for (auto& s : servers) EXPECT_TRUE(s->WaitReady(30s)) << s->process().Log();

  std::string rows = Postgres::Shared().Psql(
      db, "SELECT count(*), count(DISTINCT (component, version)) FROM flovyn_schema_migrations");
  EXPECT_EQ(rows.substr(0, rows.find('|')), rows.substr(rows.find('|') + 1));
  EXPECT_NE(rows, "0|0");
  int applied_logs = 0;
  for (auto& s : servers) {
    std::string log = s->process().Log();
    for (size_t p = log.find("applied migration"); p != std::string::npos; p = log.find("applied migration", p + 1)) {
      ++applied_logs;
    }
  }
  EXPECT_EQ(std::to_string(applied_logs), rows.substr(0, rows.find('|')))
      << "each migration applied by exactly one server";
  std::string history = Postgres::Shared().Psql(db,
                                                "SELECT component, version, name, length(checksum), duration_ms >= 0 "
                                                "FROM flovyn_schema_migrations ORDER BY version");
  EXPECT_NE(history.find("core|1|tenants|64|t"), std::string::npos) << history;
}

TEST(MigrationTest, ChangedChecksumStopsStartupWithAClearMessage) {
  std::string url = Postgres::Shared().CreateDatabase("mig");
  std::string db = url.substr(url.rfind('/') + 1);
  {
    ChildProcess migrate(ServerBinary(), {"migrate"}, {{"DATABASE_URL", url}, {"FLOVYN_SECURITY__ENABLED", "false"}});
    ASSERT_EQ(migrate.Wait(30s), 0) << migrate.Log();
  }
  Postgres::Shared().Psql(db, "UPDATE flovyn_schema_migrations SET checksum = 'deadbeef' WHERE version = 1");
  ServerProcess server({.database_url = url});
  int code = server.process().Wait(30s);
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1) << "must exit, not linger half-started";
  std::string log = server.process().Log();
  EXPECT_NE(log.find("was changed after it was applied"), std::string::npos) << log;
  EXPECT_NE(log.find("tenants"), std::string::npos) << log;
}

TEST(MigrationTest, MigrateCommandIsIdempotentAndStatusReportsState) {
  std::string url = Postgres::Shared().CreateDatabase("mig");
  std::map<std::string, std::string> env{{"DATABASE_URL", url},
                                         {"WORKER_TOKEN_SECRET", "migration-test-worker-token-secret-0123"}};
  {
    ChildProcess status(ServerBinary(), {"migrate", "--status"}, env);
    EXPECT_EQ(status.Wait(30s), 3) << status.Log();
    EXPECT_NE(status.Log().find("pending"), std::string::npos) << status.Log();
  }
  {
    ChildProcess first(ServerBinary(), {"migrate"}, env);
    ASSERT_EQ(first.Wait(30s), 0) << first.Log();
    EXPECT_TRUE(std::regex_search(first.Log(), std::regex(R"([1-9][0-9]* migration\(s\) applied, 0 already applied)")))
        << first.Log();
  }
  {
    ChildProcess second(ServerBinary(), {"migrate"}, env);
    ASSERT_EQ(second.Wait(30s), 0) << second.Log();
    EXPECT_TRUE(std::regex_search(second.Log(), std::regex(R"(0 migration\(s\) applied, [1-9][0-9]* already applied)")))
        << second.Log();
  }
  {
    ChildProcess status(ServerBinary(), {"migrate", "--status"}, env);
    EXPECT_EQ(status.Wait(30s), 0) << status.Log();
    EXPECT_NE(status.Log().find("applied"), std::string::npos) << status.Log();
  }
}

TEST(MigrationTest, ADatabaseNewerThanTheBinaryIsReported) {
  std::string url = Postgres::Shared().CreateDatabase("mig");
  std::string db = url.substr(url.rfind('/') + 1);
  {
    ChildProcess migrate(ServerBinary(), {"migrate"},
                         {{"DATABASE_URL", url}, {"WORKER_TOKEN_SECRET", "migration-test-worker-token-secret-0123"}});
    ASSERT_EQ(migrate.Wait(30s), 0) << migrate.Log();
  }
  Postgres::Shared().Psql(db,
                          "INSERT INTO flovyn_schema_migrations (component, version, name, checksum, duration_ms) "
                          "VALUES ('core', 9999, 'from_the_future', 'x', 1)");
  ServerProcess server({.database_url = url});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  auto legacy = HttpGet(server.http_port(), "/_/health");
  EXPECT_NE(legacy.body.find("DATABASE_NEWER"), std::string::npos) << legacy.body;
  EXPECT_NE(legacy.body.find("9999_from_the_future"), std::string::npos) << legacy.body;
  EXPECT_NE(server.process().Log().find("the database is newer"), std::string::npos);
}

}  // namespace
}  // namespace flovyn::testing

namespace flovyn::testing {
namespace {

TEST(MigrationTest, PluginMigrationsRunAfterCoreAndAreListedAsPlugins) {
  std::string url = Postgres::Shared().CreateDatabase("mig");
  std::string db = url.substr(url.rfind('/') + 1);
  ServerProcess server({.database_url = url, .testbed = true});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  std::string order = Postgres::Shared().Psql(db,
                                              "SELECT string_agg(component || '/' || version, ',' ORDER BY applied_at, "
                                              "component DESC) FROM flovyn_schema_migrations");
  EXPECT_EQ(order.find("core/1"), 0u) << order;
  EXPECT_NE(order.find("testbed/1"), std::string::npos) << order;
  EXPECT_NE(HttpGet(server.http_port(), "/_/health")
                .body.find("\"plugins\":[\"worker-token\",\"eventhook\",\"schedules\",\"testbed\"]"),
            std::string::npos);
}

TEST(MigrationTest, AFailedMigrationLeavesTheDatabaseAsItWasAndStopsStartup) {
  std::string url = Postgres::Shared().CreateDatabase("mig");
  std::string db = url.substr(url.rfind('/') + 1);
  Postgres::Shared().Psql(db, "CREATE TABLE fail_testbed_migration (x int)");
  ServerProcess server({.database_url = url, .testbed = true});
  int code = server.process().Wait(std::chrono::seconds(30));
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1);
  std::string log = server.process().Log();
  EXPECT_NE(log.find("migration testbed 1_marker failed and was rolled back"), std::string::npos) << log;
  // Core applied (its own transaction), the failed one left nothing behind.
  EXPECT_EQ(Postgres::Shared().Psql(db, "SELECT to_regclass('public.testbed_marker') IS NULL"), "t");
  EXPECT_EQ(Postgres::Shared().Psql(db, "SELECT count(*) FROM flovyn_schema_migrations WHERE component = 'testbed'"),
            "0");
  EXPECT_EQ(Postgres::Shared().Psql(db, "SELECT count(*) FROM flovyn_schema_migrations WHERE component = 'core'"),
            "8");  // all of core's
}

}  // namespace
}  // namespace flovyn::testing
