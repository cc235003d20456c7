#include "eventhook_store.h"

#include "flovyn/db/row.h"

namespace flovyn::plugins {

using nlohmann::json;

namespace sql {
constexpr const char* kSourceColumns = R"sql(
  id, tenant_id, slug, enabled, verifier::text AS verifier, coalesce(secret, '') AS secret,
  idempotency_paths::text AS idempotency_paths, event_type_path, max_body_bytes, rate_per_second, burst, rejected,
  created_at::text AS created_at)sql";

constexpr const char* kCreateSource = R"sql(
  INSERT INTO eventhook_sources (tenant_id, slug, enabled, verifier, secret, idempotency_paths, event_type_path,
                                 max_body_bytes, rate_per_second, burst)
  VALUES ($1, $2, $3, $4::jsonb, nullif($5, ''), $6::jsonb, $7, $8, $9, $10)
  ON CONFLICT (tenant_id, slug) DO NOTHING
  RETURNING )sql";

constexpr const char* kRouteColumns = R"sql(
  id, tenant_id, source_id, name, enabled, event_types::text AS event_types, conditions::text AS conditions,
  action::text AS action, created_at::text AS created_at)sql";

constexpr const char* kCreateRoute = R"sql(
  INSERT INTO eventhook_routes (tenant_id, source_id, name, enabled, event_types, conditions, action)
  SELECT $1, s.id, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb FROM eventhook_sources s WHERE s.id = $2 AND s.tenant_id = $1
  ON CONFLICT (source_id, name) DO NOTHING
  RETURNING )sql";

constexpr const char* kEventColumns = R"sql(
  e.id, e.tenant_id, e.source_id, t.slug || '/' || s.slug AS label, e.dedup_key, e.event_type, e.headers::text AS headers,
  e.body, e.received_at::text AS received_at, (extract(epoch FROM e.received_at) * 1000)::bigint AS received_ms, e.status, e.attempts, e.actions::text AS actions, e.error,
  e.processed_at::text AS processed_at)sql";
constexpr const char* kEventJoin =
    " FROM eventhook_events e JOIN eventhook_sources s ON s.id = e.source_id JOIN tenants t ON t.id = e.tenant_id ";

constexpr const char* kInsertEvent = R"sql(
  INSERT INTO eventhook_events (tenant_id, source_id, dedup_key, event_type, headers, body)
  VALUES ($1, $2, $3, $4, $5::jsonb, $6)
  ON CONFLICT (source_id, dedup_key) DO NOTHING
  RETURNING id)sql";

constexpr const char* kExistingEvent = "SELECT id FROM eventhook_events WHERE source_id = $1 AND dedup_key = $2";

constexpr const char* kClaim = R"sql(
  WITH c AS (
    SELECT id FROM eventhook_events
    WHERE status = 'PENDING' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED)
  UPDATE eventhook_events e SET attempts = e.attempts + 1, next_attempt_at = now() + $2::bigint * interval '1 ms'
  FROM c, eventhook_sources s, tenants t
  WHERE e.id = c.id AND s.id = e.source_id AND t.id = e.tenant_id
  RETURNING )sql";

constexpr const char* kFinish = R"sql(
  UPDATE eventhook_events SET status = $3, next_attempt_at = now() + $4::bigint * interval '1 ms',
         actions = $5::jsonb, error = $6, processed_at = CASE WHEN $3 = 'PENDING' THEN processed_at ELSE now() END
  WHERE id = $1 AND attempts = $2 AND status = 'PENDING')sql";

constexpr const char* kReprocess = R"sql(
  UPDATE eventhook_events SET status = 'PENDING', attempts = 0, next_attempt_at = now(), error = NULL,
         processed_at = NULL
  WHERE tenant_id = $1 AND id = $2)sql";
}  // namespace sql

namespace {

json ParsedOr(const std::string& text, const json& fallback) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

Source SourceOf(const db::Row& r) {
  Source s;
  s.id = r.Str("id");
  s.tenant_id = r.Str("tenant_id");
  s.spec.slug = r.Str("slug");
  s.spec.enabled = r.Bool("enabled");
  auto v = ParseVerifier(ParsedOr(r.Str("verifier"), nullptr));
  if (v.ok()) s.spec.verifier = *v;
  for (const auto& p : ParsedOr(r.Str("idempotency_paths"), json::array())) {
    if (p.is_string()) s.spec.idempotency_paths.push_back(p.get<std::string>());
  }
  s.spec.event_type_path = r.Opt("event_type_path");
  s.spec.max_body_bytes = static_cast<int>(r.Int("max_body_bytes"));
  s.spec.rate_per_second = r.Double("rate_per_second");
  s.spec.burst = static_cast<int>(r.Int("burst"));
  s.secret = r.Str("secret");
  s.rejected = r.Int("rejected");
  s.created_at = r.Str("created_at");
  return s;
}

Route RouteOf(const db::Row& r) {
  Route route;
  route.id = r.Str("id");
  route.tenant_id = r.Str("tenant_id");
  route.spec.source_id = r.Str("source_id");
  route.spec.name = r.Str("name");
  route.spec.enabled = r.Bool("enabled");
  route.spec.event_types = ParsedOr(r.Str("event_types"), json::array());
  route.spec.conditions = ParsedOr(r.Str("conditions"), json::array());
  route.spec.action = ParsedOr(r.Str("action"), nullptr);
  route.created_at = r.Str("created_at");
  return route;
}

StoredEvent EventOf(const db::Row& r) {
  StoredEvent e;
  e.id = r.Str("id");
  e.tenant_id = r.Str("tenant_id");
  e.source_id = r.Str("source_id");
  e.label = r.Str("label");
  e.dedup_key = r.Opt("dedup_key");
  e.event_type = r.Opt("event_type");
  e.headers = ParsedOr(r.Str("headers"), json::object());
  e.body = r.Str("body");
  e.received_at = r.Str("received_at");
  e.received_ms = r.Int("received_ms");
  e.status = r.Str("status");
  e.attempts = static_cast<int>(r.Int("attempts"));
  e.actions = ParsedOr(r.Str("actions"), json::array());
  e.error = r.Opt("error");
  e.processed_at = r.Opt("processed_at");
  return e;
}

template <typename T, typename F>
std::vector<T> All(const db::Result& r, F of) {
  std::vector<T> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(of(db::Row(r, i)));
  return out;
}

template <typename T, typename F>
std::optional<T> First(const db::Result& r, F of) {
  if (r.rows() == 0) return std::nullopt;
  return of(db::Row(r, 0));
}

std::string SelectSources(const char* where) {
  return std::string("SELECT ") + sql::kSourceColumns + " FROM eventhook_sources " + where;
}
std::string SelectRoutes(const char* where) {
  return std::string("SELECT ") + sql::kRouteColumns + " FROM eventhook_routes " + where;
}

}  // namespace

StatusOr<Source> EventhookStore::CreateSource(const std::string& tenant, const SourceSpec& s,
                                              const std::string& secret) {
  json paths = s.idempotency_paths;
  auto r = pool_.Query(
      std::string(sql::kCreateSource) + sql::kSourceColumns,
      {tenant, s.slug, s.enabled ? "t" : "f", s.verifier.ToJson().dump(), secret, paths.dump(), s.event_type_path,
       std::to_string(s.max_body_bytes), std::to_string(s.rate_per_second), std::to_string(s.burst)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return Status(StatusCode::kAlreadyExists, "a source with slug '" + s.slug + "' exists");
  return SourceOf(db::Row(*r, 0));
}

StatusOr<int64_t> EventhookStore::CountSources(const std::string& tenant) {
  auto r = pool_.Query("SELECT count(*) AS n FROM eventhook_sources WHERE tenant_id = $1", {tenant});
  if (!r.ok()) return r.status();
  return db::Row(*r, 0).Int("n");
}

StatusOr<std::vector<Source>> EventhookStore::ListSources(const std::string& tenant) {
  auto r = pool_.Query(SelectSources("WHERE tenant_id = $1 ORDER BY slug LIMIT 1000"), {tenant});
  if (!r.ok()) return r.status();
  return All<Source>(*r, SourceOf);
}

StatusOr<std::optional<Source>> EventhookStore::GetSource(const std::string& tenant, const std::string& id) {
  auto r = pool_.Query(SelectSources("WHERE tenant_id = $1 AND id = $2"), {tenant, id});
  if (!r.ok()) return r.status();
  return First<Source>(*r, SourceOf);
}

StatusOr<std::optional<Source>> EventhookStore::SourceBySlug(const std::string& tenant, const std::string& slug) {
  auto r = pool_.Query(SelectSources("WHERE tenant_id = $1 AND slug = $2"), {tenant, slug});
  if (!r.ok()) return r.status();
  return First<Source>(*r, SourceOf);
}

StatusOr<bool> EventhookStore::SetSourceEnabled(const std::string& tenant, const std::string& id, bool enabled) {
  auto r = pool_.Query("UPDATE eventhook_sources SET enabled = $3 WHERE tenant_id = $1 AND id = $2",
                       {tenant, id, enabled ? "t" : "f"});
  if (!r.ok()) return r.status();
  return r->affected() > 0;
}

StatusOr<bool> EventhookStore::DeleteSource(const std::string& tenant, const std::string& id) {
  auto r = pool_.Query("DELETE FROM eventhook_sources WHERE tenant_id = $1 AND id = $2", {tenant, id});
  if (!r.ok()) return r.status();
  return r->affected() > 0;
}

Status EventhookStore::CountRejected(const std::string& source_id) {
  auto r = pool_.Query("UPDATE eventhook_sources SET rejected = rejected + 1 WHERE id = $1", {source_id});
  return r.ok() ? Status::Ok() : r.status();
}

StatusOr<Route> EventhookStore::CreateRoute(const std::string& tenant, const RouteSpec& s) {
  auto r = pool_.Query(
      std::string(sql::kCreateRoute) + sql::kRouteColumns,
      {tenant, s.source_id, s.name, s.enabled ? "t" : "f", s.event_types.dump(), s.conditions.dump(), s.action.dump()});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) {
    auto source = GetSource(tenant, s.source_id);
    if (!source.ok()) return source.status();
    if (!*source) return NotFound("source not found");
    return Status(StatusCode::kAlreadyExists, "the source has a route named '" + s.name + "'");
  }
  return RouteOf(db::Row(*r, 0));
}

StatusOr<std::vector<Route>> EventhookStore::ListRoutes(const std::string& tenant) {
  auto r = pool_.Query(SelectRoutes("WHERE tenant_id = $1 ORDER BY created_at, id LIMIT 1000"), {tenant});
  if (!r.ok()) return r.status();
  return All<Route>(*r, RouteOf);
}

StatusOr<std::optional<Route>> EventhookStore::GetRoute(const std::string& tenant, const std::string& id) {
  auto r = pool_.Query(SelectRoutes("WHERE tenant_id = $1 AND id = $2"), {tenant, id});
  if (!r.ok()) return r.status();
  return First<Route>(*r, RouteOf);
}

StatusOr<bool> EventhookStore::DeleteRoute(const std::string& tenant, const std::string& id) {
  auto r = pool_.Query("DELETE FROM eventhook_routes WHERE tenant_id = $1 AND id = $2", {tenant, id});
  if (!r.ok()) return r.status();
  return r->affected() > 0;
}

StatusOr<std::vector<Route>> EventhookStore::RoutesOf(db::Tx& tx, const std::string& source_id) {
  auto r = tx.Exec(SelectRoutes("WHERE source_id = $1 AND enabled ORDER BY created_at, id"), {source_id});
  if (!r.ok()) return r.status();
  return All<Route>(*r, RouteOf);
}

StatusOr<std::pair<std::string, bool>> EventhookStore::InsertEvent(const Source& source,
                                                                   const std::optional<std::string>& dedup_key,
                                                                   const std::optional<std::string>& event_type,
                                                                   const json& headers, const std::string& body) {
  auto r = pool_.Query(sql::kInsertEvent, {source.tenant_id, source.id, dedup_key, event_type, headers.dump(), body});
  if (!r.ok()) return r.status();
  if (r->rows() == 1) return std::make_pair(db::Row(*r, 0).Str("id"), true);
  auto existing = pool_.Query(sql::kExistingEvent, {source.id, dedup_key});
  if (!existing.ok()) return existing.status();
  if (existing->rows() == 0) return Unavailable("the event could not be stored; retry");
  return std::make_pair(db::Row(*existing, 0).Str("id"), false);
}

StatusOr<std::vector<StoredEvent>> EventhookStore::ListEvents(const std::string& tenant, const EventFilter& f) {
  auto r = pool_.Query(std::string("SELECT ") + sql::kEventColumns + sql::kEventJoin +
                           "WHERE e.tenant_id = $1 AND ($2::uuid IS NULL OR e.source_id = $2) "
                           "AND ($3::text IS NULL OR e.status = $3) ORDER BY e.received_at DESC, e.id DESC LIMIT $4",
                       {tenant, f.source_id, f.status, std::to_string(f.limit)});
  if (!r.ok()) return r.status();
  return All<StoredEvent>(*r, EventOf);
}

StatusOr<std::optional<StoredEvent>> EventhookStore::GetEvent(const std::string& tenant, const std::string& id) {
  auto r = pool_.Query(
      std::string("SELECT ") + sql::kEventColumns + sql::kEventJoin + "WHERE e.tenant_id = $1 AND e.id = $2",
      {tenant, id});
  if (!r.ok()) return r.status();
  return First<StoredEvent>(*r, EventOf);
}

StatusOr<bool> EventhookStore::Reprocess(const std::string& tenant, const std::string& id) {
  auto r = pool_.Query(sql::kReprocess, {tenant, id});
  if (!r.ok()) return r.status();
  return r->affected() > 0;
}

StatusOr<std::vector<StoredEvent>> EventhookStore::Claim(db::Tx& tx, int limit, int64_t lease_ms) {
  auto r = tx.Exec(std::string(sql::kClaim) + sql::kEventColumns, {std::to_string(limit), std::to_string(lease_ms)});
  if (!r.ok()) return r.status();
  return All<StoredEvent>(*r, EventOf);
}

Status EventhookStore::Finish(db::Tx& tx, const StoredEvent& e, const std::string& status, int64_t retry_ms,
                              const json& actions, const std::optional<std::string>& error) {
  auto r = tx.Exec(sql::kFinish,
                   {e.id, std::to_string(e.attempts), status, std::to_string(retry_ms), actions.dump(), error});
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace flovyn::plugins
