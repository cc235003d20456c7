#include "worker_token_store.h"

#include "flovyn/db/row.h"

namespace flovyn::plugins {

namespace sql {
constexpr const char* kColumns =
    "id, name, prefix, created_at::text AS created_at, last_used_at::text AS last_used_at, "
    "revoked_at::text AS revoked_at";

constexpr const char* kCreate =
    "INSERT INTO worker_tokens (tenant_id, name, token_hash, prefix) VALUES ($1, $2, $3, $4) RETURNING ";

constexpr const char* kList = " FROM worker_tokens WHERE tenant_id = $1 ORDER BY created_at DESC, id";

constexpr const char* kRevoke = R"sql(
  UPDATE worker_tokens SET revoked_at = coalesce(revoked_at, now())
  WHERE id = $1 AND tenant_id = $2
  RETURNING revoked_at::text AS revoked_at)sql";

constexpr const char* kUse = R"sql(
  UPDATE worker_tokens SET last_used_at = now()
  WHERE token_hash = $1 AND revoked_at IS NULL
  RETURNING id, tenant_id)sql";
}  // namespace sql

namespace {
WorkerTokenInfo TokenOf(const db::Row& r) {
  return {r.Str("id"), r.Str("name"), r.Str("prefix"), r.Str("created_at"), r.Opt("last_used_at"), r.Opt("revoked_at")};
}
}  // namespace

StatusOr<WorkerTokenInfo> WorkerTokenStore::Create(const std::string& tenant_id, const std::string& name,
                                                   const std::string& hash, const std::string& prefix) {
  auto r = pool_.Query(std::string(sql::kCreate) + sql::kColumns, {tenant_id, name, hash, prefix});
  if (!r.ok()) return r.status();
  return TokenOf(db::Row(*r, 0));
}

StatusOr<std::vector<WorkerTokenInfo>> WorkerTokenStore::List(const std::string& tenant_id) {
  auto r = pool_.Query(std::string("SELECT ") + sql::kColumns + sql::kList, {tenant_id});
  if (!r.ok()) return r.status();
  std::vector<WorkerTokenInfo> out;
  out.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) out.push_back(TokenOf(db::Row(*r, i)));
  return out;
}

StatusOr<std::optional<std::string>> WorkerTokenStore::Revoke(const std::string& tenant_id, const std::string& id) {
  auto r = pool_.Query(sql::kRevoke, {id, tenant_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<std::string>();
  return std::optional<std::string>(db::Row(*r, 0).Str("revoked_at"));
}

StatusOr<std::optional<WorkerTokenOwner>> WorkerTokenStore::Use(const std::string& hash) {
  auto r = pool_.Query(sql::kUse, {hash});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<WorkerTokenOwner>();
  db::Row row(*r, 0);
  return std::optional<WorkerTokenOwner>(WorkerTokenOwner{row.Str("id"), row.Str("tenant_id")});
}

}  // namespace flovyn::plugins
