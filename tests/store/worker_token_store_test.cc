// The worker-token plugin's store and authenticator in-process, over the server's and the
// plugin's migrations.
#include "worker_token_store.h"

#include "flovyn/migrate/migrator.h"
#include "store_fixture.h"
#include "worker_token_auth.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> server_core_migrations();
std::vector<flovyn::migrate::Migration> worker_token_migrations();
}  // namespace flovyn::generated

namespace flovyn::testing {
namespace {

class WorkerTokenStoreTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    auto all = generated::server_core_migrations();
    auto plugin = generated::worker_token_migrations();
    all.insert(all.end(), plugin.begin(), plugin.end());
    migrate::Migrator migrator(*pool_, all, 0x466c6f76796e0001);
    auto ran = migrator.Run();
    ASSERT_TRUE(ran.ok()) << ran.status().ToString();
    tokens_ = std::make_unique<plugins::WorkerTokenStore>(*pool_);
  }
  std::unique_ptr<plugins::WorkerTokenStore> tokens_;
};

TEST_F(WorkerTokenStoreTest, CreateListRevokeAndUseKeepOnlyTheHash) {
  const std::string secret(32, 's');
  std::string token = plugins::NewWorkerToken();
  ASSERT_EQ(token.rfind("fwt_", 0), 0u);
  auto created = tokens_->Create(tenant_, "ci", plugins::TokenHash(secret, token), token.substr(0, 12));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->name, "ci");
  EXPECT_EQ(created->prefix, token.substr(0, 12));
  EXPECT_FALSE(created->last_used_at.has_value());
  EXPECT_EQ(Sql("SELECT count(*) FROM worker_tokens WHERE token_hash = $1", {token}), "0") << "never the token";

  plugins::WorkerTokenAuthenticator auth(*tokens_, secret);
  auto who = auth.Authenticate(token, "127.0.0.1");
  ASSERT_TRUE(who.ok() && who->has_value()) << who.status().ToString();
  EXPECT_EQ((*who)->tenant_id, tenant_.str());
  EXPECT_EQ((*who)->id, created->id);
  EXPECT_EQ((*who)->role, "worker");
  auto listed = tokens_->List(tenant_);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE((*listed)[0].last_used_at.has_value()) << "use is noted";

  EXPECT_FALSE(auth.Authenticate("not-a-worker-token", "x")->has_value()) << "another scheme's credential";

  auto revoked = tokens_->Revoke(tenant_, created->id);
  ASSERT_TRUE(revoked.ok() && revoked->has_value());
  auto again = tokens_->Revoke(tenant_, created->id);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ(**again, **revoked) << "revoking twice keeps the first time";
  auth.Invalidate();
  auto refused = auth.Authenticate(token, "127.0.0.1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
}

TEST_F(WorkerTokenStoreTest, AnotherTenantCannotSeeOrRevokeAToken) {
  auto other = store_->CreateTenant("globex", "Globex");
  ASSERT_TRUE(other.ok());
  auto created = tokens_->Create(tenant_, "ci", "hash-1", "fwt_abcdefgh");
  ASSERT_TRUE(created.ok());
  auto listed = tokens_->List(other->id);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  auto revoked = tokens_->Revoke(other->id, created->id);
  ASSERT_TRUE(revoked.ok());
  EXPECT_FALSE(revoked->has_value());
  EXPECT_EQ(Sql("SELECT count(*) FROM worker_tokens WHERE revoked_at IS NULL"), "1");
}

}  // namespace
}  // namespace flovyn::testing
