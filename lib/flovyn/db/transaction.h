// Runs a unit of work in one PostgreSQL transaction: BEGIN, the work, COMMIT, with ROLLBACK on
// any failure and a bounded retry when PostgreSQL reports a serialization failure or deadlock.
#pragma once

#include <functional>

#include "flovyn/db/pool.h"

namespace flovyn::db {

class Tx {
 public:
  Tx(Connection& c, Clock::time_point deadline) : conn_(c), deadline_(deadline) {}
  StatusOr<Result> Exec(std::string_view sql, const Params& params = {}) { return conn_.Exec(sql, params, deadline_); }
  // A statement whose result nobody reads, sent with the next one (Connection::Defer).
  Status Defer(std::string_view sql, const Params& params = {}) { return conn_.Defer(sql, params, deadline_); }
  // A read that goes out with the next statement, its result kept in `*into` (Connection::DeferInto).
  Status DeferInto(std::string_view sql, const Params& params, Result* into) {
    return conn_.DeferInto(sql, params, into, deadline_);
  }
  // One row of a statement over arrays, merged with the rows deferred just before it
  // (Connection::DeferRow).
  Status DeferRow(std::string_view sql, Params row) { return conn_.DeferRow(sql, std::move(row), deadline_); }
  Connection& connection() { return conn_; }
  Clock::time_point deadline() const { return deadline_; }

 private:
  Connection& conn_;
  Clock::time_point deadline_;
};

// `work` returns OK to commit. Retries up to `attempts` times on kAborted (40001/40P01);
// `work` must therefore be safe to run again from the start.
Status InTransaction(Pool& pool, const std::function<Status(Tx&)>& work, int attempts = 3);

}  // namespace flovyn::db
