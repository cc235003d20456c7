// The worker-token plugin's storage: its one table (`worker_tokens`, from the plugin's own
// migration) behind named statements and rows mapped by column name. Tokens are kept only as
// HMAC-SHA256 hashes; the store never sees a token. Thread-safe (the pool is).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "flovyn/core/status.h"
#include "flovyn/db/pool.h"

namespace flovyn::plugins {

struct WorkerTokenInfo {
  std::string id;
  std::string name;
  std::string prefix;  // the token's first 12 characters, to recognise it by
  std::string created_at;
  std::optional<std::string> last_used_at;
  std::optional<std::string> revoked_at;
};

// Whose token a hash is.
struct WorkerTokenOwner {
  std::string id;
  std::string tenant_id;
};

class WorkerTokenStore {
 public:
  explicit WorkerTokenStore(db::Pool& pool) : pool_(pool) {}

  StatusOr<WorkerTokenInfo> Create(const std::string& tenant_id, const std::string& name, const std::string& hash,
                                   const std::string& prefix);
  // Newest first; revoked ones included.
  StatusOr<std::vector<WorkerTokenInfo>> List(const std::string& tenant_id);
  // When it was revoked (the first time, when revoked twice); nullopt when the tenant has no
  // such token.
  StatusOr<std::optional<std::string>> Revoke(const std::string& tenant_id, const std::string& id);
  // The owner of a live token with this hash, noting its use; nullopt when none.
  StatusOr<std::optional<WorkerTokenOwner>> Use(const std::string& hash);

 private:
  db::Pool& pool_;
};

}  // namespace flovyn::plugins
