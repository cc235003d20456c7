// The PostgreSQL pool against a real server: recovery after restarts, deadlines, SQLSTATE.
#include "flovyn/db/pool.h"

#include <thread>

#include <gtest/gtest.h>

#include "flovyn/core/status_macros.h"
#include "flovyn/db/transaction.h"
#include "harness.h"

namespace flovyn::testing {
namespace {

using namespace std::chrono_literals;

db::PoolOptions Options(const std::string& url) {
  db::PoolOptions o;
  o.url = url;
  o.max_size = 4;
  o.connect_timeout = 2s;
  o.statement_timeout = 2s;
  o.acquire_timeout = 2s;
  return o;
}

// `url` (of the shared server) with `proxy` in between.
std::string ThroughProxy(const TcpProxy& proxy, std::string url) {
  std::string port = std::to_string(Postgres::Shared().port());
  url.replace(url.find(":" + port), port.size() + 1, ":" + std::to_string(proxy.port()));
  return url;
}

// Statements are prepared once per connection, up to prepared_per_connection texts; beyond it
// they run unprepared, with the same results. A statement whose text fails to prepare reports
// its error, and the next one works.
TEST(PoolTest, StatementsArePreparedOncePerConnectionUpToTheLimitAndBeyondItRunUnprepared) {
  std::string url = Postgres::Shared().CreateDatabase("prepared");
  db::PoolOptions o = Options(url);
  o.max_size = 1;
  o.prepared_per_connection = 4;
  db::Pool pool(o);
  auto prepared = [&pool] {
    auto r = pool.Query("SELECT count(*) FROM pg_prepared_statements");
    return r.ok() ? std::stoi(std::string(r->Get(0, 0))) : -1;
  };
  for (int i = 0; i < 3; ++i) {
    auto r = pool.Query("SELECT $1::int + 1", {std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(std::string(r->Get(0, 0)), std::to_string(i + 1));
  }
  EXPECT_EQ(prepared(), 2) << "the addition and the count, each once";
  auto bad = pool.Query("SELEC 1");
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal) << bad.status().ToString();
  auto after = pool.Query("SELECT $1::int + 1", {"41"});
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(std::string(after->Get(0, 0)), "42");
  EXPECT_EQ(prepared(), 2) << "what failed to prepare is not kept";
  for (int i = 0; i < 10; ++i) {  // distinct texts: two more fit, the rest run unprepared
    auto r = pool.Query("SELECT $1::int * " + std::to_string(i + 2), {"3"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(std::string(r->Get(0, 0)), std::to_string(3 * (i + 2)));
  }
  EXPECT_EQ(prepared(), 4) << "no more than prepared_per_connection";
}

TEST(PoolTest, IdleConnectionsTheServerClosedAreNeverHandedOut) {
  std::string url = Postgres::Shared().CreateDatabase("idle");
  db::Pool pool(Options(url));
  auto pid = pool.Query("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok());
  std::string victim(pid->Get(0, 0));
  // Another connection terminates the pooled one while it sits idle (a restart does the same).
  db::Pool admin(Options(url));
  ASSERT_TRUE(admin.Query("SELECT pg_terminate_backend($1::int)", {victim}).ok());
  ASSERT_TRUE(Eventually([&] {
    auto left = admin.Query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", {victim});
    return left.ok() && std::string(left->Get(0, 0)) == "0";
  })) << "the backend is gone";
  // The first statement after that succeeds: the dead connection is noticed before use.
  auto again = pool.Query("SELECT pg_backend_pid()");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE(std::string(again->Get(0, 0)), victim);
}

TEST(PoolTest, RecoversAfterTheDatabaseRestartsWithoutANewPool) {
  Postgres pg;
  db::Pool pool(Options(pg.CreateDatabase()));
  ASSERT_TRUE(pool.Query("SELECT 1").ok());
  pg.Stop();
  auto down = pool.Query("SELECT 1");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable) << down.status().ToString();
  pg.Start();
  StatusOr<db::Result> up = Unavailable("not yet");
  for (int i = 0; i < 20 && !up.ok(); ++i) {
    up = pool.Query("SELECT 41 + 1");
    if (!up.ok()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->Get(0, 0), "42");
}

TEST(PoolTest, ParametersAreNeverInterpolated) {
  db::Pool pool(Options(Postgres::Shared().CreateDatabase()));
  auto r = pool.Query("SELECT $1::text, $2::text IS NULL", {std::string("'; DROP TABLE x; --"), std::nullopt});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Get(0, 0), "'; DROP TABLE x; --");
  EXPECT_EQ(r->Get(0, 1), "t");
}

TEST(PoolTest, SqlStatesBecomeCanonicalStatuses) {
  db::Pool pool(Options(Postgres::Shared().CreateDatabase()));
  ASSERT_TRUE(pool.Query("CREATE TABLE u (id int PRIMARY KEY)").ok());
  ASSERT_TRUE(pool.Query("INSERT INTO u VALUES (1)").ok());
  EXPECT_EQ(pool.Query("INSERT INTO u VALUES (1)").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(pool.Query("SELECT 'x'::int").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pool.Query("SELEC 1").status().code(), StatusCode::kInternal);
  // A failed statement leaves the connection usable.
  EXPECT_TRUE(pool.Query("SELECT 1").ok());
}

TEST(PoolTest, ServerSideStatementTimeoutIsApplied) {
  auto o = Options(Postgres::Shared().CreateDatabase());
  o.statement_timeout = 300ms;
  db::Pool pool(o);
  auto t0 = std::chrono::steady_clock::now();
  auto r = pool.Query("SELECT pg_sleep(5)");
  EXPECT_FALSE(r.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_TRUE(pool.Query("SELECT 1").ok());
}

TEST(PoolTest, ClientSideDeadlinesHoldWhenTheHostNeverAnswers) {
  TcpProxy proxy(Postgres::Shared().port());
  std::string url = ThroughProxy(proxy, Postgres::Shared().CreateDatabase());
  db::Pool pool(Options(url));
  ASSERT_TRUE(pool.Query("SELECT 1").ok());
  proxy.SetBlackhole(true);
  auto t0 = std::chrono::steady_clock::now();
  auto hung = pool.Query("SELECT 1");  // pooled connection: statement deadline
  EXPECT_EQ(hung.status().code(), StatusCode::kDeadlineExceeded);
  auto fresh = pool.Query("SELECT 1");  // new connection: connect deadline
  EXPECT_EQ(fresh.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 6s);
  proxy.SetBlackhole(false);
  EXPECT_TRUE(pool.Query("SELECT 1").ok());
}

// A transaction's BEGIN goes out with its first statement (one pipeline, one flight from the
// client), and its guarantees hold: a failing first statement or a failing unit rolls back, and
// one that runs no statement sends nothing at all.
TEST(PoolTest, ATransactionSendsItsBeginWithItsFirstStatementAndKeepsItsGuarantees) {
  TcpProxy proxy(Postgres::Shared().port());
  std::string url = ThroughProxy(proxy, Postgres::Shared().CreateDatabase("begin"));
  db::PoolOptions o = Options(url);
  o.max_size = 1;
  db::Pool pool(o);
  ASSERT_TRUE(pool.Query("CREATE TABLE t (v int PRIMARY KEY)").ok());
  auto insert = [&pool](int v, Status then) {
    return db::InTransaction(pool, [v, then](db::Tx& tx) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO t VALUES ($1)", {std::to_string(v)}).status());
      return then;
    });
  };
  auto rows = [&pool] {
    return std::string(pool.Query("SELECT string_agg(v::text, ',' ORDER BY v) FROM t")->Get(0, 0));
  };
  ASSERT_TRUE(insert(1, Status::Ok()).ok());  // prepares the INSERT on the connection
  int before = proxy.client_flights();
  ASSERT_TRUE(insert(2, Status::Ok()).ok());
  EXPECT_EQ(proxy.client_flights() - before, 2) << "BEGIN with the INSERT, then COMMIT";

  EXPECT_EQ(insert(2, Status::Ok()).code(), StatusCode::kAlreadyExists) << "the first statement fails";
  EXPECT_EQ(insert(3, FailedPrecondition("refused")).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(rows(), "1,2") << "both rolled back";
  before = proxy.client_flights();
  EXPECT_TRUE(db::InTransaction(pool, [](db::Tx&) { return Status::Ok(); }).ok());
  EXPECT_EQ(proxy.client_flights(), before) << "no statement, nothing sent";
  ASSERT_TRUE(insert(3, Status::Ok()).ok());
  EXPECT_EQ(rows(), "1,2,3") << "the connection is as good as new after each";
}

// A deferred statement (one whose result nobody reads) goes out with the next statement, in
// order, in the same flight; its error is that statement's; a COMMIT takes it along; a ROLLBACK
// drops it unsent.
TEST(PoolTest, ADeferredStatementGoesOutWithTheNextOneAndItsErrorIsThatOnes) {
  TcpProxy proxy(Postgres::Shared().port());
  std::string url = ThroughProxy(proxy, Postgres::Shared().CreateDatabase("defer"));
  db::PoolOptions o = Options(url);
  o.max_size = 1;
  db::Pool pool(o);
  ASSERT_TRUE(pool.Query("CREATE TABLE t (v int PRIMARY KEY)").ok());
  const char* insert = "INSERT INTO t VALUES ($1)";
  const char* count = "SELECT count(*) FROM t";
  std::string seen;
  auto defer_then_count = [&](int v) {
    return db::InTransaction(pool, [&, v](db::Tx& tx) {
      RETURN_IF_ERROR(tx.Defer(insert, {std::to_string(v)}));
      ASSIGN_OR_RETURN(auto r, tx.Exec(count));
      seen = std::string(r.Get(0, 0));
      return Status::Ok();
    });
  };
  ASSERT_TRUE(defer_then_count(1).ok());  // prepares both statements on the connection
  EXPECT_EQ(seen, "1") << "the deferred insert ran first";
  int before = proxy.client_flights();
  ASSERT_TRUE(defer_then_count(2).ok());
  EXPECT_EQ(seen, "2");
  EXPECT_EQ(proxy.client_flights() - before, 2) << "BEGIN, the insert and the count together, then COMMIT";

  EXPECT_EQ(defer_then_count(2).code(), StatusCode::kAlreadyExists) << "the deferred insert's error";
  before = proxy.client_flights();
  EXPECT_EQ(db::InTransaction(pool,
                              [&](db::Tx& tx) {
                                RETURN_IF_ERROR(tx.Defer(insert, {"7"}));
                                return FailedPrecondition("changed my mind");
                              })
                .code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(proxy.client_flights(), before) << "rolled back before anything went out: nothing sent";
  ASSERT_TRUE(db::InTransaction(pool, [&](db::Tx& tx) { return tx.Defer(insert, {"3"}); }).ok());
  EXPECT_EQ(proxy.client_flights() - before, 1) << "BEGIN, the insert and COMMIT in one flight";
  EXPECT_EQ(std::string(pool.Query("SELECT string_agg(v::text, ',' ORDER BY v) FROM t")->Get(0, 0)), "1,2,3");
}

// Rows deferred one after another with the same text go out as one statement over arrays, each
// value intact whatever it holds (quotes, backslashes, commas, braces, NULL); a statement between
// them starts a new one.
TEST(PoolTest, RowsDeferredOneAfterAnotherGoOutAsOneStatementWithEveryValueIntact) {
  std::string url = Postgres::Shared().CreateDatabase("defer_rows");
  db::PoolOptions o = Options(url);
  o.max_size = 1;
  db::Pool pool(o);
  ASSERT_TRUE(pool.Query("CREATE TABLE r (k int, v text, rows_in_statement int)").ok());
  // Each row records how many rows its statement carried.
  const char* rows = "INSERT INTO r SELECT k, v, cardinality($1::int[]) FROM unnest($1::int[], $2::text[]) AS x(k, v)";
  std::vector<std::optional<std::string>> values = {
      R"(a "quoted" one)", R"(back\slash \" both)", "a,b {c} }{", std::nullopt, "NULL", ""};
  ASSERT_TRUE(db::InTransaction(pool, [&](db::Tx& tx) {
                for (size_t i = 0; i < values.size(); ++i) {
                  RETURN_IF_ERROR(tx.DeferRow(rows, {std::to_string(i), values[i]}));
                }
                RETURN_IF_ERROR(tx.Exec("SELECT 1").status());  // a statement between: a new one after it
                RETURN_IF_ERROR(tx.DeferRow(rows, {"10", "after"}));
                return tx.DeferRow(rows, {"11", "after"});
              }).ok());
  auto r = pool.Query("SELECT k, v, rows_in_statement FROM r ORDER BY k");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rows(), 8);
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(r->GetOpt(static_cast<int>(i), 1), values[i]) << "row " << i;
    EXPECT_EQ(r->Get(static_cast<int>(i), 2), std::to_string(values.size())) << "row " << i;
  }
  EXPECT_EQ(r->Get(6, 2), "2");
  EXPECT_EQ(r->Get(7, 2), "2");
}

// Reads deferred with DeferInto go out with the next statement, in one flight, and their
// results are there once it returns.
TEST(PoolTest, DeferredReadsGoOutWithTheNextStatementAndKeepTheirResults) {
  TcpProxy proxy(Postgres::Shared().port());
  std::string url = ThroughProxy(proxy, Postgres::Shared().CreateDatabase("defer_into"));
  db::PoolOptions o = Options(url);
  o.max_size = 1;
  db::Pool pool(o);
  auto reads = [&](std::string& a, std::string& b, std::string& c) {
    return db::InTransaction(pool, [&](db::Tx& tx) {
      db::Result ra, rb;
      RETURN_IF_ERROR(tx.DeferInto("SELECT $1::int + 1", {"1"}, &ra));
      RETURN_IF_ERROR(tx.DeferInto("SELECT $1::text || '!'", {"b"}, &rb));
      ASSIGN_OR_RETURN(auto rc, tx.Exec("SELECT $1::int * 3", {"5"}));
      a = std::string(ra.Get(0, 0));
      b = std::string(rb.Get(0, 0));
      c = std::string(rc.Get(0, 0));
      return Status::Ok();
    });
  };
  std::string a, b, c;
  ASSERT_TRUE(reads(a, b, c).ok());  // prepares the statements on the connection
  int before = proxy.client_flights();
  a = b = c = "";
  ASSERT_TRUE(reads(a, b, c).ok());
  EXPECT_EQ(a, "2");
  EXPECT_EQ(b, "b!");
  EXPECT_EQ(c, "15");
  EXPECT_EQ(proxy.client_flights() - before, 2) << "BEGIN, both reads and the statement together, then COMMIT";
}

// A COMMIT that went out behind a deferred statement that failed never ran, and the connection
// says so (nothing committed: the work may run again); a COMMIT that failed itself did run.
TEST(PoolTest, ACommitBehindAFailedDeferredStatementIsKnownNotToHaveRun) {
  std::string url = Postgres::Shared().CreateDatabase("defer_skipped");
  db::PoolOptions o = Options(url);
  o.max_size = 2;
  db::Pool pool(o);
  ASSERT_TRUE(pool.Query("CREATE TABLE u (v int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED)").ok());
  ASSERT_TRUE(pool.Query("INSERT INTO u VALUES (1)").ok());
  auto conn = pool.Acquire();
  ASSERT_TRUE(conn.ok());
  auto deadline = db::Clock::now() + 5s;
  // The deferred statement fails (not a number): the COMMIT behind it is skipped.
  (*conn)->Begin();
  ASSERT_TRUE((*conn)->Defer("INSERT INTO u VALUES ($1::int)", {"one"}, deadline).ok());
  Status s = (*conn)->ExecSimple("COMMIT", deadline);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE((*conn)->skipped()) << s.ToString();
  (void)(*conn)->ExecSimple("ROLLBACK", deadline);
  // The COMMIT itself fails (the deferred unique check): it ran.
  (*conn)->Begin();
  ASSERT_TRUE((*conn)->Defer("INSERT INTO u VALUES ($1::int)", {"1"}, deadline).ok());
  s = (*conn)->ExecSimple("COMMIT", deadline);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_FALSE((*conn)->skipped());
  EXPECT_EQ(std::string(pool.Query("SELECT count(*) FROM u")->Get(0, 0)), "1");
}

TEST(PoolTest, AcquireWaitsForAFreeConnectionUpToTheDeadline) {
  auto o = Options(Postgres::Shared().CreateDatabase());
  o.max_size = 1;
  o.acquire_timeout = 300ms;
  db::Pool pool(o);
  auto held = pool.Acquire();
  ASSERT_TRUE(held.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto second = pool.Acquire();
  EXPECT_FALSE(second.ok());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_EQ(pool.stats().acquire_timeouts_total, 1u);
}

}  // namespace
}  // namespace flovyn::testing
