#include "store_fixture.h"

#include "flovyn/db/row.h"
#include "flovyn/migrate/migrator.h"
#include "harness.h"

namespace flovyn::generated {
std::vector<flovyn::migrate::Migration> server_core_migrations();
}

namespace flovyn::testing {

void StoreTest::SetUp() {
  std::string url = Postgres::Shared().CreateDatabase("store");
  pool_ = std::make_unique<db::Pool>(db::PoolOptions{.url = url, .max_size = 4});
  migrate::Migrator migrator(*pool_, generated::server_core_migrations(), 0x466c6f76796e0001);
  auto ran = migrator.Run();
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  store_ = std::make_unique<engine::Store>(*pool_, notifier_, engine::StoreOptions{});
  auto t = store_->CreateTenant("acme", "Acme");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  tenant_ = engine::TenantId(t->id);
  auto w = store_->RegisterWorker(tenant_, {"worker-1", "1.0", {"q"}, {"order"}, {"charge"}});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  worker_ = *w;
}

std::unique_ptr<db::Pool> StoreTest::PoolThrough(int proxy_port) {
  return std::make_unique<db::Pool>(
      db::PoolOptions{.url = Postgres::Shared().Through(pool_->options().url, proxy_port), .max_size = 1});
}

engine::ExecutionId StoreTest::StartAndClaim(const std::string& queue, const std::string& kind) {
  auto started = store_->StartWorkflow(tenant_, {kind, queue, R"({"n":1})", std::nullopt, ""});
  EXPECT_TRUE(started.ok()) << started.status().ToString();
  auto claim = store_->ClaimWorkflow(tenant_, worker_, queue, {kind});
  EXPECT_TRUE(claim.ok() && claim->has_value());
  notifier_.Clear();
  return engine::ExecutionId(started->execution_id);
}

StatusOr<engine::SubmitResult> StoreTest::Submit(const engine::ExecutionId& execution,
                                                 std::vector<engine::WorkflowCommand> commands) {
  auto w = store_->GetWorkflow(tenant_, execution);
  if (!w.ok()) return w.status();
  return store_->SubmitCommands(tenant_, worker_, execution, w->last_sequence, std::move(commands));
}

std::vector<std::string> StoreTest::EventTypes(const engine::ExecutionId& execution) {
  auto events = store_->Events(tenant_, execution);
  std::vector<std::string> out;
  if (!events.ok()) return out;
  for (const auto& e : *events) out.push_back(e.type);
  return out;
}

std::string StoreTest::Sql(const std::string& sql, const db::Params& params) {
  auto r = pool_->Query(sql, params);
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return "";
  }
  return r->rows() == 0 ? "" : std::string(r->Get(0, 0));
}

void StoreTest::NoteExecutionUpdates() {
  Sql("CREATE TABLE row_updates (id uuid)");
  Sql("CREATE FUNCTION note_row_update() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN INSERT INTO row_updates VALUES (NEW.id); RETURN NEW; END $$");
  Sql("CREATE TRIGGER note_row_updates AFTER UPDATE ON workflow_executions FOR EACH ROW "
      "EXECUTE FUNCTION note_row_update()");
}

int StoreTest::ExecutionUpdates(const std::string& execution) {
  return std::stoi(execution.empty() ? Sql("SELECT count(*) FROM row_updates")
                                     : Sql("SELECT count(*) FROM row_updates WHERE id = $1", {execution}));
}

int64_t StoreTest::Count(const std::string& table, const std::string& execution) {
  std::string column = table == "task_executions" ? "workflow_id" : "execution_id";
  return std::stoll(Sql("SELECT count(*) FROM " + table + " WHERE " + column + " = $1", {execution}));
}

}  // namespace flovyn::testing
