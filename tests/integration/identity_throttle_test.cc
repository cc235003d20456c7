// The console's identity in-process against the shared PostgreSQL: how sign-in throttling and
// the bounded password pool meet. Refusals while hashing is saturated are not failed sign-ins.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "app_harness.h"
#include "flovyn/db/pool.h"
#include "identity.h"
#include "password_pool.h"

namespace flovyn::testing {
namespace {

// A migrated console database, and a pool on it.
std::unique_ptr<db::Pool> ConsoleDatabase() {
  std::string url = Postgres::Shared().CreateDatabase("ident");
  ChildProcess migrate(AppBinary(), {"migrate"},
                       {{"DATABASE_URL", url},
                        {"BACKEND_URL", "http://127.0.0.1:9"},
                        {"BETTER_AUTH_SECRET", kAppSecret},
                        {"NEXT_PUBLIC_APP_URL", "http://console.example"}});
  EXPECT_EQ(migrate.Wait(std::chrono::seconds(30)), 0) << migrate.Log();
  db::PoolOptions o;
  o.url = url;
  o.max_size = 4;
  return std::make_unique<db::Pool>(o);
}

// Holds the pool's only thread until released.
class Occupier {
 public:
  explicit Occupier(app::PasswordPool& pool) {
    thread_ = std::thread([this, &pool] {
      Status s = pool.Run([this] {
        std::unique_lock<std::mutex> l(mu_);
        running_ = true;
        cv_.notify_all();
        cv_.wait(l, [this] { return released_; });
      });
      EXPECT_TRUE(s.ok());
    });
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return running_; });
  }
  ~Occupier() {
    {
      std::lock_guard<std::mutex> l(mu_);
      released_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false, released_ = false;
  std::thread thread_;
};

TEST(IdentityThrottleTest, SignInsRefusedWhileHashingIsSaturatedDoNotCountAsFailures) {
  auto pool = ConsoleDatabase();
  app::PasswordPool passwords(1, 0);  // one check at a time, none waiting
  app::Identity identity(*pool, kAppSecret, std::chrono::hours(1), passwords);
  auto made = identity.SignUp("ada@example.com", "Ada", "correct-horse-1", "Acme", "acme",
                              [](const app::Session&) { return Status::Ok(); });
  ASSERT_TRUE(made.ok()) << made.status().message();
  {
    Occupier busy(passwords);
    for (int i = 0; i < 12; ++i) {
      auto r = identity.SignIn("ada@example.com", "correct-horse-1", "192.0.2.10");
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
      EXPECT_NE(r.status().message().find("busy checking passwords"), std::string::npos) << r.status().message();
    }
  }
  // Twelve refusals, more than the five free attempts: none counted, so the right password gets in.
  auto in = identity.SignIn("ada@example.com", "correct-horse-1", "192.0.2.10");
  EXPECT_TRUE(in.ok()) << in.status().message();
}

TEST(IdentityThrottleTest, AQueueLimitOfZeroStillRunsOneCheckPerThread) {
  app::PasswordPool passwords(1, 0);
  auto hashed = passwords.Hash("correct-horse-1");
  ASSERT_TRUE(hashed.ok()) << hashed.status().message();
  auto good = passwords.Verify(*hashed, "correct-horse-1");
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(*good);
  Occupier busy(passwords);
  EXPECT_EQ(passwords.Hash("x").status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace flovyn::testing
