// The store's frame (transactions, sweeps) and its tenants. Workflows, tasks and background
// work are in store_workflows.cc, store_tasks.cc and store_background.cc.
#include "engine/store.h"

#include <spdlog/spdlog.h>

#include "engine/limits.h"
#include "engine/rows.h"
#include "engine/sql.h"
#include "flovyn/core/status_macros.h"
#include "flovyn/trace/trace.h"

namespace flovyn::engine {

// The SQL spells max_duration_ms out as a literal.
static_assert(limits::kMaxDurationMs.value == 31536000000);

Store::Store(db::Pool& pool, WorkNotifier& notifier, StoreOptions options, EngineMetrics* metrics)
    : pool_(pool), notifier_(notifier), options_(options), metrics_(metrics) {}

thread_local Unit* Store::joined_unit_ = nullptr;

// Rounded up: a run the key wakes is never before the deadline.
std::string DeadlineKeyOf(std::chrono::system_clock::time_point at) {
  return DeadlineKey(std::chrono::ceil<std::chrono::microseconds>(at.time_since_epoch()).count());
}

Store::Joined::Joined(Unit& u) { joined_unit_ = &u; }
Store::Joined::~Joined() { joined_unit_ = nullptr; }

Status Store::NotifyInTransaction(db::Tx& tx, const std::set<std::string>& wakes, const Due& due) {
  for (const auto& k : wakes) RETURN_IF_ERROR(notifier_.InTransaction(tx, k));
  if (due) RETURN_IF_ERROR(notifier_.InTransaction(tx, DeadlineKeyOf(*due)));
  return Status::Ok();
}

void Store::NotifyAfterCommit(const std::set<std::string>& wakes, const Due& due) {
  for (const auto& k : wakes) notifier_.AfterCommit(k);
  if (due) notifier_.AfterCommit(DeadlineKeyOf(*due));
}

void Store::Committed(Unit& u) {
  NotifyAfterCommit(u.wakes(), u.deadline());
  u.RunAfterCommit();
}

Status Store::Run(const std::function<Status(Unit&)>& work, const char* operation) {
  if (joined_unit_ != nullptr) return work(*joined_unit_);
  trace::Span span(std::string("store.") + operation, trace::Kind::kClient);
  span.SetAttribute("db.system", "postgresql");
  std::unique_ptr<Unit> committed;
  Status s = db::InTransaction(pool_, [&](db::Tx& tx) {
    auto u = std::make_unique<Unit>(tx, metrics_, handoffs_);
    RETURN_IF_ERROR(work(*u));
    RETURN_IF_ERROR(NotifyInTransaction(tx, u->wakes(), u->deadline()));
    committed = std::move(u);
    return Status::Ok();
  });
  if (s.ok()) {
    Committed(*committed);
  } else if (s.code() == StatusCode::kInternal || s.code() == StatusCode::kUnavailable ||
             s.code() == StatusCode::kDeadlineExceeded) {
    span.SetError(s.message());
  }
  return s;
}

StatusOr<int> Store::Sweep(const char* name, const char* select_sql, int limit,
                           const std::function<Status(Unit&, const db::Result&, int)>& per_row, const char* operation) {
  int n = 0;
  std::vector<std::string> failures;
  // First every row together, with no savepoints (two round trips fewer per row). A row that
  // fails rolls that attempt back; the second attempt puts each row in a savepoint of its own,
  // so a row that fails is rolled back alone, logged, counted and skipped, and one bad row never
  // stops the sweep for every other row and tenant.
  bool row_failed = false;
  for (bool isolated : {joined_unit_ != nullptr, true}) {  // a joined unit cannot roll back alone
    Status s = Run(
        [&](Unit& u) {
          n = 0;
          failures.clear();
          ASSIGN_OR_RETURN(auto r, u.Exec(select_sql, {std::to_string(limit)}));
          for (int i = 0; i < r.rows(); ++i) {
            if (!isolated) {
              Status st = per_row(u, r, i);
              if (st.ok()) {
                ++n;
                continue;
              }
              if (st.code() == StatusCode::kUnavailable) return st;  // the database, not the row
              row_failed = true;
              return st;
            }
            RETURN_IF_ERROR(u.Exec(sql::kSavepoint));
            auto mark = u.Checkpoint();
            Status st = per_row(u, r, i);
            // A statement the row deferred fails here, and is the row's failure.
            if (st.ok()) st = u.Exec(sql::kReleaseSavepoint).status();
            if (st.ok()) {
              ++n;
              continue;
            }
            if (st.code() == StatusCode::kUnavailable) return st;
            u.Rewind(std::move(mark));
            RETURN_IF_ERROR(u.Exec(sql::kRollbackToSavepoint));
            failures.push_back(std::string(r.Get(i, 0)) + ": " + st.message());
          }
          return Status::Ok();
        },
        operation);
    if (!isolated && row_failed) continue;
    if (!s.ok()) return s;
    break;
  }
  for (const auto& f : failures) spdlog::error("sweep {} skipped row {}", name, f);
  if (metrics_ && !failures.empty()) metrics_->sweep_errors.With({name})->Inc(static_cast<double>(failures.size()));
  return n;
}

// ------------------------------------------------------------------------------ tenants

StatusOr<Tenant> Store::CreateTenant(const std::string& slug, const std::string& name, const std::string& owner,
                                     bool claim_legacy) {
  if (!IsSlug(slug)) {
    return InvalidArgument("slug must be 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit");
  }
  RETURN_IF_ERROR(limits::Name(name, "name"));
  if (owner != kStaticOwner && !IsUuid(owner)) {
    return InvalidArgument("a tenant's owner is 'static' or an organisation id");
  }
  Tenant t;
  Status s = Run([&](Unit& u) {
    auto r = u.Exec(sql::kInsertTenant, {slug, name, owner});
    if (!r.ok()) {
      // The slug is free but this organisation owns another tenant already.
      if (r.status().code() == StatusCode::kAlreadyExists) {
        return Status(StatusCode::kAlreadyExists, "this organisation already owns a tenant");
      }
      return r.status();
    }
    if (r->rows() == 1) {
      t = TenantFrom(db::Row(*r, 0));
      return Status::Ok();
    }
    // The slug is taken. The same owner asking again gets its tenant (a repeated sign-up step); an
    // organisation that predates owners claims its legacy tenant when asked to; anyone else gets
    // a conflict.
    if (owner != kStaticOwner) {
      ASSIGN_OR_RETURN(auto mine,
                       u.Exec(claim_legacy ? sql::kClaimLegacyTenant : sql::kTenantOfOwnerBySlug, {slug, owner}));
      if (mine.rows() == 1) {
        t = TenantFrom(db::Row(mine, 0));
        t.existed = true;
        return Status::Ok();
      }
    }
    return Status(StatusCode::kAlreadyExists, "the tenant slug '" + slug + "' is taken");
  });
  if (!s.ok()) return s;
  return t;
}

StatusOr<Tenant> Store::TenantWhere(const char* sql, const std::string& value) {
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql, {value}));
  if (r.rows() == 0) return NotFound("tenant not found");
  return TenantFrom(db::Row(r, 0));
}

StatusOr<Tenant> Store::TenantBySlug(const std::string& slug) { return TenantWhere(sql::kTenantBySlug, slug); }

StatusOr<Tenant> Store::TenantById(const std::string& id) {
  if (!IsUuid(id)) return NotFound("tenant not found");
  return TenantWhere(sql::kTenantById, id);
}

StatusOr<Tenant> Store::TenantByOwner(const std::string& owner) {
  if (!IsUuid(owner)) return NotFound("tenant not found");
  return TenantWhere(sql::kTenantByOwner, owner);
}

StatusOr<std::vector<Tenant>> Store::ListTenants() {
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kListTenants));
  std::vector<Tenant> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(TenantFrom(db::Row(r, i)));
  return out;
}

// ------------------------------------------------------------------------------ workers

StatusOr<WorkerId> Store::RegisterWorker(const TenantId& tenant, const WorkerRegistration& w) {
  RETURN_IF_ERROR(limits::Name(w.name, "worker name"));
  if (!w.version.empty()) RETURN_IF_ERROR(limits::Name(w.version, "worker version"));
  for (const auto& [list, field] : {std::pair{&w.queues, "queues"}, std::pair{&w.workflow_kinds, "workflow_kinds"},
                                    std::pair{&w.task_kinds, "task_kinds"}}) {
    RETURN_IF_ERROR(limits::Items(list->size(), field));
    for (const auto& item : *list) RETURN_IF_ERROR(limits::Name(item, field));
  }
  ASSIGN_OR_RETURN(
      auto r, pool_.Query(sql::kInsertWorker, {tenant, w.name, w.version, JsonArray(w.queues, false),
                                               JsonArray(w.workflow_kinds, false), JsonArray(w.task_kinds, false)}));
  return WorkerId(db::Row(r, 0).Str("id"));
}

Status Store::WorkerHeartbeat(const TenantId& tenant, const WorkerId& worker_id) {
  if (!IsUuid(worker_id)) return NotFound("worker not found");
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kWorkerHeartbeat, {worker_id, tenant}));
  if (r.affected() == 0) return NotFound("worker not found");
  return Status::Ok();
}

StatusOr<std::vector<WorkerView>> Store::ListWorkers(const TenantId& tenant) {
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kListWorkers, {tenant}));
  std::vector<WorkerView> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(WorkerFrom(db::Row(r, i)));
  return out;
}

}  // namespace flovyn::engine
