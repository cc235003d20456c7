// Migrations (operations.md §3) with real server processes on a real database.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "harness.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;

TEST(MigrationTest, ThreeServersOnAnEmptyDatabaseAllBecomeReadyAndApplyEachMigrationOnce) {
  std::string url = Postgres::Shared().CreateDatabase("mig");
  std::string db = url.substr(url.rfind('/') + 1);
  std::vector<std::unique_ptr<ServerProcess>> servers;
  for (int i = 0; i < 3; ++i) servers.push_back(std::make_unique<ServerProcess>(ServerProcess::Options{.database_url = url}));
  for (auto& s : servers) EXPECT_TRUE(s->WaitReady(30s)) << s->process().Log();

  std::string rows = Postgres::Shared().Psql(db, "SELECT count(*), count(DISTINCT (component, version)) FROM flovyn_schema_migrations");
  EXPECT_EQ(rows.substr(0, rows.find('|')), rows.substr(rows.find('|') + 1));
  EXPECT_NE(rows, "0|0");
  int applied_logs = 0;
  for (auto& s : servers) {
    std::string log = s->process().Log();
    for (size_t p = log.find("applied migration"); p != std::string::npos; p = log.find("applied migration", p + 1)) {
      ++applied_logs;
    }
  }
  EXPECT_EQ(std::to_string(applied_logs), rows.substr(0, rows.find('|'))) << "each migration applied by exactly one server";
  std::string history = Postgres::Shared().Psql(db, "SELECT component, version, name, length(checksum), duration_ms >= 0 FROM flovyn_schema_migrations ORDER BY version");
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
  std::map<std::string, std::string> env{{"DATABASE_URL", url}, {"WORKER_TOKEN_SECRET", "x"}};
  {
    ChildProcess status(ServerBinary(), {"migrate", "--status"}, env);
    EXPECT_EQ(status.Wait(30s), 3) << status.Log();
    EXPECT_NE(status.Log().find("pending"), std::string::npos) << status.Log();
  }
  {
    ChildProcess first(ServerBinary(), {"migrate"}, env);
    ASSERT_EQ(first.Wait(30s), 0) << first.Log();
    EXPECT_NE(first.Log().find("1 migration(s) applied, 0 already applied"), std::string::npos) << first.Log();
  }
  {
    ChildProcess second(ServerBinary(), {"migrate"}, env);
    ASSERT_EQ(second.Wait(30s), 0) << second.Log();
    EXPECT_NE(second.Log().find("0 migration(s) applied, 1 already applied"), std::string::npos) << second.Log();
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
    ChildProcess migrate(ServerBinary(), {"migrate"}, {{"DATABASE_URL", url}, {"WORKER_TOKEN_SECRET", "x"}});
    ASSERT_EQ(migrate.Wait(30s), 0) << migrate.Log();
  }
  Postgres::Shared().Psql(db, "INSERT INTO flovyn_schema_migrations (component, version, name, checksum, duration_ms) VALUES ('core', 9999, 'from_the_future', 'x', 1)");
  ServerProcess server({.database_url = url});
  ASSERT_TRUE(server.WaitReady()) << server.process().Log();
  auto legacy = HttpGet(server.http_port(), "/_/health");
  EXPECT_NE(legacy.body.find("DATABASE_NEWER"), std::string::npos) << legacy.body;
  EXPECT_NE(legacy.body.find("9999_from_the_future"), std::string::npos) << legacy.body;
  EXPECT_NE(server.process().Log().find("the database is newer"), std::string::npos);
}

}  // namespace
}  // namespace flovyn::testing
