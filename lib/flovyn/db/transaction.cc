#include "flovyn/db/transaction.h"

namespace flovyn::db {

Status InTransaction(Pool& pool, const std::function<Status(Tx&)>& work, int attempts) {
  Status last;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    auto deadline = Clock::now() + pool.options().statement_timeout;
    auto conn = pool.Acquire(std::min(deadline, Clock::now() + pool.options().acquire_timeout));
    if (!conn.ok()) return conn.status();
    Tx tx(**conn, deadline);
    (*conn)->Begin();
    last = work(tx);
    if (last.ok()) last = (*conn)->ExecSimple("COMMIT", deadline);
    if (last.ok()) return last;
    if (!(*conn)->broken()) (void)(*conn)->ExecSimple("ROLLBACK", Clock::now() + std::chrono::seconds(5));
    if (last.code() != StatusCode::kAborted) return last;
  }
  return last;
}

}  // namespace flovyn::db
