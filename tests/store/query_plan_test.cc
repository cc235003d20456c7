// How PostgreSQL plans the statements on a worker's hot path. Prepared statements run on
// generic plans after a few executions; a statement that finds one task by its id must use the
// primary key whatever the statistics say, not scan an index of every running task.
#include <tuple>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "engine/sql.h"
#include "store_fixture.h"

namespace flovyn::testing {
namespace {

// SQL literals joined as an argument list.
std::string Args(std::initializer_list<std::string> literals) {
  std::string out;
  for (const auto& l : literals) {
    if (!out.empty()) out += ", ";
    out += l;
  }
  return out;
}

class QueryPlanTest : public StoreTest {
 protected:
  // The generic plan of `sql` (prepared with PREPARE, so parameter types are inferred) run with
  // `args`, one line per plan node.
  std::string GenericPlan(const std::string& sql, const std::string& args, bool seqscan = true) {
    auto conn = pool_->Acquire();
    if (!conn.ok()) return "no connection";
    PGconn* c = (*conn)->raw();
    std::string setup =
        "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = " + std::string(seqscan ? "on" : "off") +
        "; DEALLOCATE ALL; PREPARE plan_probe AS " + sql;
    PGresult* r = PQexec(c, setup.c_str());
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string error = PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) return "prepare failed: " + error;
    r = PQexec(c, ("EXPLAIN (COSTS OFF) EXECUTE plan_probe(" + args + ")").c_str());
    std::string plan;
    for (int i = 0; i < PQntuples(r); ++i) plan += std::string(PQgetvalue(r, i, 0)) + "\n";
    PQclear(r);
    PQclear(PQexec(c, "DEALLOCATE ALL; RESET plan_cache_mode; RESET enable_seqscan"));
    (*conn)->MarkBroken();  // its prepared-statement cache no longer matches the session
    return plan;
  }
};

TEST_F(QueryPlanTest, AHeldTaskIsFoundByItsKeyWhenTheRunningTasksIndexLooksEmpty) {
  // Tasks run and finished since the last vacuum, and none running when analysed: the running
  // tasks' index holds pages of dead entries yet looks empty to the planner, so scanning all of
  // it looks cheaper than the key, and costs a visit per dead entry on every result.
  ASSERT_EQ(Sql("WITH t AS (INSERT INTO task_executions (tenant_id, kind, queue, status, attempt, lease_owner, "
                "lease_expires_at) SELECT $1, 'k', 'q', 'RUNNING', 1, 'w', now() + interval '1 minute' "
                "FROM generate_series(1, 5000) RETURNING 1) SELECT count(*) FROM t",
                {tenant_.str()}),
            "5000");
  Sql("UPDATE task_executions SET status = 'COMPLETED', lease_owner = NULL, lease_expires_at = NULL, "
      "completed_at = now() WHERE tenant_id = $1",
      {tenant_.str()});
  Sql("ANALYZE task_executions");
  const std::string id = "'00000000-0000-4000-8000-000000000001'", tenant = "'" + tenant_.str() + "'";
  struct Case {
    const char* name;
    const char* sql;
    std::string args;
  };
  for (const Case& c : {Case{"a result", engine::sql::kCompleteHeldTask, Args({id, tenant, "1", "'w'", "'1'"})},
                        Case{"a release", engine::sql::kReleaseTask, Args({id, tenant, "'w'", "1"})},
                        Case{"a heartbeat", engine::sql::kHeartbeatTask, Args({id, "NULL"})},
                        Case{"a task's lock", engine::sql::kLockTask, Args({id, tenant})}}) {
    std::string plan = GenericPlan(c.sql, c.args);
    EXPECT_NE(plan.find("task_executions_pkey"), std::string::npos) << c.name << ":\n" << plan;
    EXPECT_EQ(plan.find("task_executions_leased"), std::string::npos) << c.name << ":\n" << plan;
  }
  // The lease sweep still finds expired leases through that index.
  std::string sweep = GenericPlan(engine::sql::kExpiredTaskLeases, "100", false);
  EXPECT_NE(sweep.find("task_executions_leased"), std::string::npos) << sweep;
}

TEST_F(QueryPlanTest, AWorkflowsTimersAreFoundByItsKeyWhenThePendingTimersIndexLooksEmpty) {
  // 500 workflows that each slept 10 times since the last vacuum.
  auto execution = StartAndClaim();
  Sql("INSERT INTO workflow_executions (tenant_id, kind, queue) SELECT $1, 'k', 'q' FROM generate_series(1, 499)",
      {tenant_.str()});
  ASSERT_EQ(Sql("WITH t AS (INSERT INTO timers (execution_id, name, fire_at) SELECT e.id, 't' || i, now() "
                "FROM workflow_executions e, generate_series(1, 10) i WHERE e.tenant_id = $1 RETURNING 1) "
                "SELECT count(*) FROM t",
                {tenant_.str()}),
            "5000");
  Sql("UPDATE timers SET status = 'FIRED', fired_at = now()");
  Sql("ANALYZE timers");
  const std::string id = "'" + execution.str() + "'";
  for (const auto& [name, sql, args] : {std::tuple<const char*, const char*, std::string>{
                                            "a cancelled timer", engine::sql::kCancelTimer, Args({id, "'t1'"})},
                                        {"an ended workflow's timers", engine::sql::kCancelTimersOfExecution, id}}) {
    std::string plan = GenericPlan(sql, args);
    EXPECT_NE(plan.find("timers_pkey"), std::string::npos) << name << ":\n" << plan;
    EXPECT_EQ(plan.find("timers_due"), std::string::npos) << name << ":\n" << plan;
  }
  // The timer sweep and the scheduler's next deadline still read that index.
  for (const auto& [sql, args] :
       {std::pair<const char*, std::string>{engine::sql::kDueTimers, "100"}, {engine::sql::kNextDeadlines, "1"}}) {
    std::string plan = GenericPlan(sql, args, false);
    EXPECT_NE(plan.find("timers_due"), std::string::npos) << plan;
  }
}

TEST_F(QueryPlanTest, ARowOfATenantIsFoundByItsKeyBeforeAnyStatisticsExist) {
  // As migrated and never analysed (a new installation's first minute, before autovacuum): the
  // lists' (tenant_id, ...) indexes cost the same as the key on an empty table, and a plan made
  // then and kept walks all the tenant's rows for each lookup as the table grows.
  const std::string id = "'00000000-0000-4000-8000-000000000001'", tenant = "'" + tenant_.str() + "'";
  struct Case {
    const char* name;
    const char* sql;
    std::string args;
    const char* key;
  };
  for (const Case& c :
       {Case{"an execution's lock", engine::sql::kLockExecution, Args({id, tenant}), "workflow_executions_pkey"},
        Case{"an execution", engine::sql::kWorkflowOfTenant, Args({id, tenant}), "workflow_executions_pkey"},
        Case{"its events", engine::sql::kEventsOfTenantAfter, Args({id, tenant, "0"}), "workflow_executions_pkey"},
        Case{"a task", engine::sql::kTaskOfTenant, Args({id, tenant}), "task_executions_pkey"},
        Case{"a task's lock", engine::sql::kLockTask, Args({id, tenant}), "task_executions_pkey"},
        Case{"a result", engine::sql::kCompleteHeldTask, Args({id, tenant, "1", "'w'", "'1'"}), "task_executions_pkey"},
        Case{"a release", engine::sql::kReleaseTask, Args({id, tenant, "'w'", "1"}), "task_executions_pkey"},
        Case{"a cancelled task", engine::sql::kTaskCancelledWhileHeld, Args({id, tenant, "'w'", "1"}),
             "task_executions_pkey"}}) {
    std::string plan = GenericPlan(c.sql, c.args);
    EXPECT_NE(plan.find(c.key), std::string::npos) << c.name << ":\n" << plan;
    EXPECT_EQ(plan.find("_list"), std::string::npos) << c.name << ":\n" << plan;
  }
}

}  // namespace
}  // namespace flovyn::testing
