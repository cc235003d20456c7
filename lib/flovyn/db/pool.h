// PostgreSQL through libpq: a bounded connection pool with connect, acquire and statement
// deadlines enforced on the client side (a host that drops packets cannot hang a caller), and
// recovery after the database restarts without restarting the process.
// Pool is thread-safe; a Connection is used by one thread at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <libpq-fe.h>

#include "flovyn/core/mutex.h"
#include "flovyn/core/status.h"

namespace flovyn::db {

using Clock = std::chrono::steady_clock;
using Params = std::vector<std::optional<std::string>>;

// Owns one PGresult.
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* r) : res_(r, &PQclear) {}
  int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
  int columns() const { return res_ ? PQnfields(res_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  std::string_view Get(int row, int col) const {
    return {PQgetvalue(res_.get(), row, col), static_cast<size_t>(PQgetlength(res_.get(), row, col))};
  }
  std::optional<std::string> GetOpt(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return std::string(Get(row, col));
  }
  int64_t GetInt(int row, int col) const;
  int Column(const char* name) const { return PQfnumber(res_.get(), name); }
  long affected() const;

 private:
  std::shared_ptr<PGresult> res_;
};

// One server connection. Every operation takes a deadline; when it passes the connection is
// considered broken (it may be mid-protocol) and is discarded by the pool.
class Connection {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  StatusOr<Result> Exec(std::string_view sql, const Params& params, Clock::time_point deadline);
  Status ExecSimple(std::string_view sql, Clock::time_point deadline);  // may hold several statements
  // Begins a transaction with no round trip of its own: BEGIN goes out with the next statement
  // (pipelined with it), and a COMMIT or ROLLBACK before any statement sends nothing.
  void Begin() { pending_begin_ = true; }
  // A statement whose result nobody reads: it goes out with the next one (pipelined, in order),
  // and its error, if any, is that statement's. A ROLLBACK (or ROLLBACK TO) drops it unsent.
  Status Defer(std::string_view sql, const Params& params, Clock::time_point deadline);
  // As Defer, keeping the statement's result in `*into` once it has gone out (with the next
  // Exec): several reads in one round trip. `*into` must outlive that statement.
  Status DeferInto(std::string_view sql, const Params& params, Result* into, Clock::time_point deadline);
  // Defers one row of a statement that takes each of its parameters as an array ($k: the k-th
  // value of every row, as in `unnest($1::bigint[], $2::text[])`). Rows of the same text
  // deferred one after another go out as one statement holding them all.
  Status DeferRow(std::string_view sql, Params row, Clock::time_point deadline);
  bool broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
  // After a failed Exec or ExecSimple: true when the statement itself never ran because a
  // deferred one sent before it failed (a COMMIT so refused committed nothing).
  bool skipped() const { return skipped_; }
  PGconn* raw() { return conn_; }
  // Waits for readability until the deadline; used for LISTEN.
  Status WaitReadable(Clock::time_point deadline);
  void MarkBroken() { broken_ = true; }
  // For an idle connection: false when the server has closed it meanwhile (a restart, an
  // administrator's terminate), found without a round trip, so no statement is sent into it.
  bool IdleAlive();

 private:
  friend class Pool;
  Connection(PGconn* c, uint64_t generation, size_t max_prepared)
      : conn_(c), generation_(generation), max_prepared_(max_prepared) {}
  // The name `sql` is prepared under on this connection (prepared now when new and there is
  // room); null when it runs unprepared.
  StatusOr<const std::string*> Prepared(const std::string& sql, int params, Clock::time_point deadline);
  StatusOr<Result> Collect(Clock::time_point deadline);
  Status Flush(Clock::time_point deadline);
  // A statement as it goes out: its prepared name (null: unprepared), text and values.
  struct Queued {
    const std::string* name;
    std::string sql;
    Params params;
    std::vector<Params> rows;  // DeferRow's: `params` are made of them as it goes out
    Result* into = nullptr;    // DeferInto's
  };
  // The pending BEGIN, the deferred statements and `current` (when given) in one pipeline: one
  // round trip. Returns `current`'s result, or the first error.
  StatusOr<Result> Pipelined(const Queued* current, Clock::time_point deadline);
  Status Lost();  // the connection broke mid-protocol
  PGconn* conn_;
  uint64_t generation_;
  bool broken_ = false;
  bool pending_begin_ = false;
  bool skipped_ = false;
  bool aborted_ = false;  // Collect saw its statement skipped (PGRES_PIPELINE_ABORTED)
  std::vector<Queued> deferred_;
  Clock::time_point last_used_ = Clock::now();
  size_t max_prepared_;
  std::unordered_map<std::string, std::string> prepared_;  // text -> statement name
};

struct PoolOptions {
  std::string url;
  std::string application_name = "flovyn";
  int max_size = 10;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds statement_timeout{30000};  // also set server-side
  std::chrono::milliseconds acquire_timeout{5000};
  // Statements each connection keeps prepared (parsed once, planned from its cache after); the
  // texts beyond it run unprepared. 0: none.
  size_t prepared_per_connection = 200;
};

struct PoolStats {
  int max_size = 0;
  int open = 0;
  int in_use = 0;
  int waiting = 0;
  uint64_t connects_total = 0;
  uint64_t connect_failures_total = 0;
  uint64_t acquire_timeouts_total = 0;
};

class Pool;

// Returns its connection to the pool on destruction (or discards it if broken).
class PooledConnection {
 public:
  PooledConnection(Pool* pool, std::unique_ptr<Connection> c) : pool_(pool), conn_(std::move(c)) {}
  PooledConnection(PooledConnection&&) noexcept = default;
  PooledConnection& operator=(PooledConnection&&) noexcept = default;
  ~PooledConnection();
  Connection* operator->() { return conn_.get(); }
  Connection& operator*() { return *conn_; }

 private:
  Pool* pool_;
  std::unique_ptr<Connection> conn_;
};

class Pool {
 public:
  explicit Pool(PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Waits for a free slot until `deadline` (or acquire_timeout when not given).
  StatusOr<PooledConnection> Acquire(std::optional<Clock::time_point> deadline = std::nullopt);
  // Acquire + Exec with the statement timeout.
  StatusOr<Result> Query(std::string_view sql, const Params& params = {});
  // Opens a dedicated connection outside the pool's budget (advisory locks, LISTEN).
  StatusOr<std::unique_ptr<Connection>> Connect(Clock::time_point deadline);
  // Closes idle connections and refuses new acquisitions.
  void Close();
  PoolStats stats() const;
  const PoolOptions& options() const { return options_; }

 private:
  friend class PooledConnection;
  void Release(std::unique_ptr<Connection> c);

  PoolOptions options_;
  mutable Mutex mu_;
  CondVar cv_;
  std::deque<std::unique_ptr<Connection>> idle_ GUARDED_BY(mu_);
  int open_ GUARDED_BY(mu_) = 0;  // (idle + in use + connecting)
  int in_use_ GUARDED_BY(mu_) = 0;
  int waiting_ GUARDED_BY(mu_) = 0;
  uint64_t generation_ GUARDED_BY(mu_) = 0;  // bumped when a connection breaks
  bool closed_ GUARDED_BY(mu_) = false;
  uint64_t connects_ GUARDED_BY(mu_) = 0;
  uint64_t connect_failures_ GUARDED_BY(mu_) = 0;
  uint64_t acquire_timeouts_ GUARDED_BY(mu_) = 0;
};

}  // namespace flovyn::db
