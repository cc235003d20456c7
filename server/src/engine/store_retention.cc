// Retention and search attributes set over REST: each tenant's retention period, the purge of
// finished executions past it, and the attribute map of an execution.
#include "engine/rows.h"
#include "engine/search.h"
#include "engine/sql.h"
#include "engine/sql_search.h"
#include "engine/store.h"
#include "flovyn/core/status_macros.h"

namespace flovyn::engine {

using nlohmann::json;

StatusOr<std::string> Store::SetSearchAttributes(const TenantId& tenant, const ExecutionId& execution,
                                                 const std::string& attributes_json) {
  json attributes = json::parse(attributes_json, nullptr, false);
  RETURN_IF_ERROR(ValidateSearchAttributes(attributes));
  RETURN_IF_ERROR(GetWorkflow(tenant, execution));
  RETURN_IF_ERROR(Run([&](Unit& u) { return PutSearchAttributes(u, tenant, execution, attributes); }));
  return SearchAttributesOf(execution);
}

StatusOr<std::string> Store::SearchAttributesOf(const ExecutionId& execution) {
  ASSIGN_OR_RETURN(auto attributes, engine::SearchAttributesOf(pool_, execution));
  return attributes.dump();
}

StatusOr<int> Store::RetentionDays(const TenantId& tenant) {
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kRetentionOfTenant, {tenant}));
  if (r.rows() == 0) return NotFound("tenant not found");
  return static_cast<int>(db::Row(r, 0).Int("retention_days"));
}

Status Store::SetRetentionDays(const TenantId& tenant, int days) {
  if (days < 1 || days > 36500) return InvalidArgument("retentionDays must be 1 to 36500");
  return pool_.Query(sql::kSetRetention, {tenant, std::to_string(days)}).status();
}

StatusOr<Store::Purged> Store::PurgeExpired(int limit,
                                            const std::function<Status(const std::vector<std::string>&)>& exporter) {
  Purged p;
  RETURN_IF_ERROR(Run([&](Unit& u) {
    p = {};
    ASSIGN_OR_RETURN(auto expired, u.Exec(sql::kExpiredExecutions, {std::to_string(limit)}));
    json ids = json::array();
    for (int i = 0; i < expired.rows(); ++i) ids.push_back(db::Row(expired, i).Str("id"));
    if (!ids.empty()) {
      if (exporter) {
        ASSIGN_OR_RETURN(auto docs, u.Exec(sql::kExportExecutions, {ids.dump()}));
        std::vector<std::string> lines;
        lines.reserve(static_cast<size_t>(docs.rows()));
        for (int i = 0; i < docs.rows(); ++i) lines.push_back(db::Row(docs, i).Str("line"));
        RETURN_IF_ERROR(exporter(lines));
      }
      ASSIGN_OR_RETURN(auto r, u.Exec(sql::kPurgeExecutions, {ids.dump()}));
      db::Row row(r, 0);
      p.executions = row.Int("executions");
      p.events = row.Int("events");
      p.tasks = row.Int("tasks");
      p.timers = row.Int("timers");
      p.promises = row.Int("promises");
      p.state = row.Int("state");
      p.attributes = row.Int("attributes");
    }
    ASSIGN_OR_RETURN(auto tasks, u.Exec(sql::kPurgeStandaloneTasks, {std::to_string(limit)}));
    p.tasks += tasks.affected();
    return Status::Ok();
  }));
  return p;
}

StatusOr<double> Store::RetentionLag() {
  ASSIGN_OR_RETURN(auto r, pool_.Query(sql::kRetentionLag));
  return r.rows() == 0 ? 0.0 : db::Row(r, 0).Double("lag");
}

}  // namespace flovyn::engine
